import { afterAll, beforeAll } from 'vitest';
import type { FakeBenji } from '../../sandbox/fake-benji.js';
import { startFakeStarship, type FakeStarship } from '../../sandbox/fake-starship.js';
import { benjiApiKey, buildBroker, starshipPassword, starshipUsername, type TestBroker } from './broker.js';
import { startFakeBenji } from './fakes.js';

export interface BrokerWithFakes {
  benji: FakeBenji;
  starship: FakeStarship;
  subject: TestBroker;
}

/**
 * A test file's broker, wired to a fake Benji and a fake Starship that start before its tests and
 * close after them. Call it at the top of the file; read the fields inside tests and hooks.
 */
export function brokerWithFakes(env: Record<string, string> = {}): BrokerWithFakes {
  const world = {} as BrokerWithFakes;
  beforeAll(async () => {
    world.benji = await startFakeBenji({ apiKey: benjiApiKey });
    world.starship = await startFakeStarship({ username: starshipUsername, password: starshipPassword });
    world.subject = buildBroker({ BENJI_BASE_URL: world.benji.url, STARSHIP_BASE_URL: world.starship.url, ...env });
  });
  afterAll(async () => {
    await world.subject.close();
    await Promise.all([world.benji.close(), world.starship.close()]);
  });
  return world;
}
