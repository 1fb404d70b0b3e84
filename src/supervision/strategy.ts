// Restart strategies decide which children a single child's exit takes down with it (OTP one_for_one,
// one_for_all, rest_for_one). Pure: given start order and the failed id, the ids to restart in start order.

export type Strategy = "one_for_one" | "one_for_all" | "rest_for_one";

export const affectedChildren = (strategy: Strategy, startOrder: ReadonlyArray<string>, failed: string): ReadonlyArray<string> => {
  switch (strategy) {
    case "one_for_one":
      return [failed];
    case "one_for_all":
      return startOrder;
    case "rest_for_one": {
      const at = startOrder.indexOf(failed);
      return at < 0 ? [failed] : startOrder.slice(at);
    }
  }
};
