import { startFakeBenji as startBenji, type FakeBenjiOptions } from '../../sandbox/fake-benji.js';
import { watchTokens } from './secrets.js';

/** The sandbox fake Benji, with every token it issues watched by the log secret scan. */
export async function startFakeBenji(options: FakeBenjiOptions) {
  const benji = await startBenji(options);
  watchTokens(benji.issuedTokens);
  watchTokens(benji.issuedUserTokens);
  watchTokens(benji.issuedExchangeTokens);
  return benji;
}
