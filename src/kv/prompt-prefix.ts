// The prompt-text side of prefix identity, for routing. A gateway has the prompt's text, not its tokens, so
// the cluster-wide prefix index keys prompts by a hash chain over fixed blocks of text (the same chain as the
// engine's token blocks, over UTF-16 code units): two prompts sharing n blocks of text share about as many
// characters, hence nearly as many tokens. The engine's own reuse stays token-exact; a text match only decides
// where the prompt goes.
import { blockHashes } from "./prefix-hash.ts";

/** 64 characters: about 16 tokens of English text for the BPE vocabularies of Llama-family models. */
export const PROMPT_BLOCK_CHARS = 64;

export const promptBlockHashes = (prompt: string): number[] => {
  const units = new Array<number>(prompt.length);
  for (let i = 0; i < prompt.length; i++) units[i] = prompt.charCodeAt(i);
  return blockHashes(units, PROMPT_BLOCK_CHARS);
};
