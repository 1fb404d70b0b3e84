// Plain string-built SVG of the cost vs interactivity Pareto frontier (no dependency), for `tandem plan --svg`.
import type { PlanConfig } from "./evaluate.ts";

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

export function frontierSvg(all: readonly PlanConfig[], frontier: readonly PlanConfig[], title: string): string {
  const W = 720, H = 480, L = 70, R = 20, T = 40, B = 50;
  const pts = all.length ? all : frontier;
  const xMax = Math.max(1, ...pts.map((c) => c.interactivity)) * 1.05;
  const yMax = Math.max(1e-9, ...frontier.map((c) => c.usdPerMtok)) * 1.5;
  const x = (v: number) => L + (v / xMax) * (W - L - R);
  const y = (v: number) => H - B - (Math.min(v, yMax) / yMax) * (H - T - B);
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="11">`,
    `<text x="${W / 2}" y="20" text-anchor="middle" font-size="14">${esc(title)}</text>`,
    `<line x1="${L}" y1="${H - B}" x2="${W - R}" y2="${H - B}" stroke="black"/><line x1="${L}" y1="${T}" x2="${L}" y2="${H - B}" stroke="black"/>`,
    `<text x="${W / 2}" y="${H - 12}" text-anchor="middle">interactivity (output tokens/s per user)</text>`,
    `<text x="16" y="${H / 2}" transform="rotate(-90 16 ${H / 2})" text-anchor="middle">$ per million tokens (input+output)</text>`,
  ];
  for (let i = 0; i <= 4; i++) {
    const v = (yMax * i) / 4, u = (xMax * i) / 4;
    parts.push(`<text x="${L - 6}" y="${y(v) + 4}" text-anchor="end">${v.toFixed(3)}</text>`);
    parts.push(`<text x="${x(u)}" y="${H - B + 16}" text-anchor="middle">${u.toFixed(0)}</text>`);
  }
  for (const c of pts) if (c.usdPerMtok <= yMax) parts.push(`<circle cx="${x(c.interactivity).toFixed(1)}" cy="${y(c.usdPerMtok).toFixed(1)}" r="2" fill="#bbb"/>`);
  parts.push(`<polyline fill="none" stroke="#c33" stroke-width="2" points="${frontier.map((c) => `${x(c.interactivity).toFixed(1)},${y(c.usdPerMtok).toFixed(1)}`).join(" ")}"/>`);
  for (const c of frontier) {
    parts.push(`<circle cx="${x(c.interactivity).toFixed(1)}" cy="${y(c.usdPerMtok).toFixed(1)}" r="4" fill="#c33"><title>${esc(c.pair)} $${c.usdPerMtok.toFixed(4)}/Mtok</title></circle>`);
    parts.push(`<text x="${(x(c.interactivity) + 6).toFixed(1)}" y="${(y(c.usdPerMtok) - 6).toFixed(1)}" font-size="9">${esc(c.pair)}</text>`);
  }
  parts.push("</svg>");
  return parts.join("\n");
}
