import { hash } from 'node:crypto';

/** A user as the store and the logs know them: the SHA-256 of their id, in hex. No id is kept in clear. */
export const userHash = (userId: string) => hash('sha256', userId, 'hex');
