/**
 * Benji's connect modes, the one place they are spelled: the names the broker's config and API use,
 * and the numbers Benji's API takes (there is no 2). Everything else derives from this table.
 */
export const benjiModeNumbers = { connect: 1, transfer: 3, redeem: 4 } as const;

export type BenjiMode = keyof typeof benjiModeNumbers;
export type BenjiModeNumber = (typeof benjiModeNumbers)[BenjiMode];

export const benjiModes = Object.keys(benjiModeNumbers) as [BenjiMode, ...BenjiMode[]];

export const benjiModeByNumber = Object.fromEntries(benjiModes.map((mode) => [benjiModeNumbers[mode], mode])) as Record<
  BenjiModeNumber,
  BenjiMode
>;
