import { setFlagsFromString } from 'node:v8';

/**
 * Imported by the entry point right after require-node.ts, before anything is allocated per request.
 *
 * V8 pretenures an allocation site (allocates its objects straight into the old generation) once
 * most of them survive a scavenge. Early in a process, while the young generation is still small
 * and requests are in flight at every scavenge, short-lived per-request objects look long-lived, so
 * their sites can be pretenured. The dead pretenured objects then keep the young objects they point
 * to alive through every scavenge until the next full collection, so those are promoted too, their
 * sites look long-lived in turn, and the process stays that way for life: slow scavenges and
 * frequent full collections. Whether a process falls into that state is luck, so two runs of the
 * same code differed by far more than any change to it (bench/README.md, "Fourth pass").
 *
 * The broker's long-lived objects are few and made at start-up, so pretenuring has nothing to win
 * here. The collector reads the flag at every collection, so setting it now takes effect; NODE_OPTIONS
 * refuses it, and a flag on the command line would be lost by whoever starts `dist/main.js` their way.
 */
setFlagsFromString('--no-allocation-site-pretenuring');
