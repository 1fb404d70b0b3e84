// Plain string-built SVG plots for `tandem simulate --svg` (no dependency): TTFT and TPOT CDFs with the SLO
// marked, and SLO attainment against arrival rate with the goodput target.
import type { Slo } from "../planner/slo.ts";
import type { GoodputPoint } from "./goodput.ts";

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

interface Panel {
  readonly x: number;
  readonly y: number;
  readonly w: number;
  readonly h: number;
  readonly title: string;
  readonly xLabel: string;
  readonly yLabel: string;
  readonly xMax: number;
  readonly yMax: number;
  readonly points: ReadonlyArray<readonly [number, number]>;
  /** A dashed vertical or horizontal reference line. */
  readonly reference?: { readonly axis: "x" | "y"; readonly value: number; readonly label: string };
}

function panel(p: Panel): string {
  const L = 60, B = 40, T = 28, R = 16;
  const px = (v: number) => p.x + L + (Math.min(v, p.xMax) / p.xMax) * (p.w - L - R);
  const py = (v: number) => p.y + p.h - B - (Math.min(v, p.yMax) / p.yMax) * (p.h - T - B);
  const out = [
    `<text x="${p.x + p.w / 2}" y="${p.y + 18}" text-anchor="middle" font-size="13">${esc(p.title)}</text>`,
    `<line x1="${px(0)}" y1="${py(0)}" x2="${px(p.xMax)}" y2="${py(0)}" stroke="black"/>`,
    `<line x1="${px(0)}" y1="${py(0)}" x2="${px(0)}" y2="${py(p.yMax)}" stroke="black"/>`,
    `<text x="${p.x + p.w / 2}" y="${p.y + p.h - 6}" text-anchor="middle">${esc(p.xLabel)}</text>`,
    `<text x="${p.x + 14}" y="${p.y + p.h / 2}" transform="rotate(-90 ${p.x + 14} ${p.y + p.h / 2})" text-anchor="middle">${esc(p.yLabel)}</text>`,
  ];
  for (let i = 0; i <= 4; i++) {
    const xv = (p.xMax * i) / 4, yv = (p.yMax * i) / 4;
    out.push(`<text x="${px(xv).toFixed(1)}" y="${py(0) + 14}" text-anchor="middle">${+xv.toPrecision(3)}</text>`);
    out.push(`<text x="${px(0) - 5}" y="${(py(yv) + 4).toFixed(1)}" text-anchor="end">${+yv.toPrecision(3)}</text>`);
  }
  if (p.reference) {
    const r = p.reference;
    const [x1, y1, x2, y2] = r.axis === "x" ? [px(r.value), py(0), px(r.value), py(p.yMax)] : [px(0), py(r.value), px(p.xMax), py(r.value)];
    out.push(`<line x1="${x1.toFixed(1)}" y1="${y1.toFixed(1)}" x2="${x2.toFixed(1)}" y2="${y2.toFixed(1)}" stroke="#36c" stroke-dasharray="4 3"/>`);
    out.push(`<text x="${(x1 + 4).toFixed(1)}" y="${(y2 + 12).toFixed(1)}" fill="#36c">${esc(r.label)}</text>`);
  }
  out.push(`<polyline fill="none" stroke="#c33" stroke-width="2" points="${p.points.map(([x, y]) => `${px(x).toFixed(1)},${py(y).toFixed(1)}`).join(" ")}"/>`);
  return out.join("\n");
}

const svg = (w: number, h: number, body: string[]) =>
  [`<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" font-family="sans-serif" font-size="11">`, ...body, "</svg>"].join("\n");

/** At most `n` evenly spaced (value, cumulative fraction) points of an ascending sample. */
function cdfPoints(sorted: Float64Array, n = 400): Array<readonly [number, number]> {
  const pts: Array<readonly [number, number]> = [];
  if (sorted.length === 0) return pts;
  const step = Math.max(1, Math.floor(sorted.length / n));
  for (let i = 0; i < sorted.length; i += step) pts.push([sorted[i]!, (i + 1) / sorted.length]);
  pts.push([sorted[sorted.length - 1]!, 1]);
  return pts;
}

/** TTFT and TPOT CDFs side by side, in milliseconds, with the SLO as a dashed line. */
export function latencyCdfSvg(ttftS: Float64Array, tpotS: Float64Array, slo: Slo, title: string): string {
  const ms = (a: Float64Array) => a.map((v) => v * 1000);
  const ttft = ms(ttftS), tpot = ms(tpotS);
  const xMax = (a: Float64Array, sloMs: number) => Math.max(sloMs * 1.2, a.length ? a[Math.floor(a.length * 0.99)]! * 1.1 : 1);
  return svg(960, 420, [
    `<text x="480" y="16" text-anchor="middle" font-size="14">${esc(title)}</text>`,
    panel({ x: 0, y: 20, w: 480, h: 400, title: "TTFT", xLabel: "ms", yLabel: "fraction of requests", xMax: xMax(ttft, slo.ttftMs), yMax: 1, points: cdfPoints(ttft), reference: { axis: "x", value: slo.ttftMs, label: `SLO ${slo.ttftMs} ms` } }),
    panel({ x: 480, y: 20, w: 480, h: 400, title: "TPOT (per-request mean)", xLabel: "ms", yLabel: "fraction of requests", xMax: xMax(tpot, slo.tpotMs), yMax: 1, points: cdfPoints(tpot), reference: { axis: "x", value: slo.tpotMs, label: `SLO ${slo.tpotMs} ms` } }),
  ]);
}

/** SLO attainment against arrival rate, the goodput target as a dashed line. */
export function attainmentSvg(points: readonly GoodputPoint[], target: number, title: string): string {
  const xMax = Math.max(1e-9, ...points.map((p) => p.rate)) * 1.05;
  return svg(720, 440, [
    panel({ x: 0, y: 0, w: 720, h: 440, title, xLabel: "arrival rate (requests/s)", yLabel: "SLO attainment", xMax, yMax: 1, points: points.map((p) => [p.rate, p.attainment] as const), reference: { axis: "y", value: target, label: `${Math.round(target * 100)}% target` } }),
  ]);
}
