export const NEEDED: string;
export function nodeVersionIsEnough(version: string): boolean;
export function nodeVersionProblem(version: string, executable?: string): string | undefined;
