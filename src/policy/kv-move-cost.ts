// What it costs to move KV between two engine formats, for placement: 0 when the bytes are usable as they are,
// 1 between two llama.cpp states (a V transpose per layer, done while the next layer is in flight), 2 when the
// cache goes through the canonical form (vendor-native formats: translated whole once it has arrived), and
// undefined when no translation path exists (another model or KV head count).
import { kvMoveRefusal } from "../engine/emulated/kv-translation.ts";
import { parseFormatName } from "../kv/llama-format.ts";

export const kvMoveCost = (from: string, to: string): number | undefined => {
  if (from === to) return 0;
  if (kvMoveRefusal(from, to) !== undefined) return undefined;
  return parseFormatName(from) !== undefined && parseFormatName(to) !== undefined ? 1 : 2;
};
