// Seeded pseudo-random numbers for the simulator: the same seed gives the same run, on Node and Deno.
// sfc32 (Chris Doty-Humphrey's small fast counter), seeded through splitmix32 so nearby seeds diverge at once.

/** Uniform in [0, 1). */
export type Rng = () => number;

export function seededRng(seed: number): Rng {
  let s = seed >>> 0;
  const splitmix = () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  };
  let a = splitmix();
  let b = splitmix();
  let c = splitmix();
  let d = splitmix();
  return () => {
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return (t >>> 0) / 4294967296;
  };
}

/** An exponentially distributed sample with the given mean. */
export const exponential = (rng: Rng, mean: number): number => -Math.log(1 - rng()) * mean;
