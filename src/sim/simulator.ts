// The discrete-event cluster simulator. Requests arrive (arrivals.ts, trace.ts, agentic.ts), wait at their
// gateway, and are placed by the live gateway's own policy function and parameters — placeRequest
// (src/policy/placement.ts) with DEFAULT_MAX_LOAD and kvMoveCost, as actors/request/gateway.ts calls it — over
// a view of the workers' in-flight counts and decode KV room; saturated workers (load ≥ DEFAULT_MAX_LOAD) make
// requests wait at the gateway. Workers are groups of tp chips whose step times come from the
// hardware performance model (step-times.ts):
//   prefill group    FIFO queue; one batched forward at a time, up to `batch` prompts that fit in memory
//                    (admitFromQueue); the first token is out when the forward ends (TTFT).
//   KV link          each prompt's KV reaches its decode group kvTransferSeconds later (planner/kv-link.ts;
//                    no contention between transfers).
//   decode group     continuous batching: sequences join at step boundaries while batch slots and KV memory
//                    (final context reserved up front) allow; one step advances every sequence by a token.
//   colocated group  both on one group (no chunked prefill): a prefill running next to decode is slowed and
//                    slows the decode steps it overlaps, by the measured H200 interference (planner/interference.ts).
// TPOT is DistServe's per-request mean: (last token − first token) / (output − 1), so KV transfer and decode
// queueing count against it.
import { admitFromQueue, type BatchLimits, type BatchUsage } from "../policy/batch-admission.ts";
import { kvMoveCost } from "../policy/kv-move-cost.ts";
import { DEFAULT_MAX_LOAD, type WorkerView } from "../policy/least-loaded.ts";
import { type PlacementPolicy, placeRequest } from "../policy/placement.ts";
import { decodeStepDuringPrefill, prefillUnderDecode } from "../planner/interference.ts";
import { kvTransferSeconds } from "../planner/kv-link.ts";
import type { Slo } from "../planner/slo.ts";
import { type Arrival, type ArrivalSource, noFollowUp } from "./arrivals.ts";
import { type ClusterSpec, describeTopology, deviceCount, pools, type PoolSpec, usdPerHour } from "./cluster.ts";
import { type BatchedSequence, DecodeBatch } from "./decode-batch.ts";
import { EventQueue } from "./event-queue.ts";
import { Fifo } from "./fifo.ts";
import { distribution, overlap, type PoolUsage, Samples, type SimResult } from "./metrics.ts";
import { type StepTimes, stepTimes } from "./step-times.ts";

export interface SimInput {
  readonly cluster: ClusterSpec;
  readonly arrivals: ArrivalSource;
  readonly slo: Slo;
  /** Arrivals stop and the measurement window ends at this simulated time. */
  readonly seconds: number;
  /** Start of the measurement window (default 20% of `seconds`). */
  readonly warmupSeconds?: number;
  /** After arrivals stop, keep running at most this long so the window's requests finish (default `seconds`). */
  readonly drainSeconds?: number;
  /** Called every PROGRESS_EVENTS events with the simulated time. */
  readonly onProgress?: (simSeconds: number, events: number) => void;
}

export class SimError extends Error {
  override readonly name = "SimError";
}

const PROGRESS_EVENTS = 1 << 21;

/** An open-loop arrival: the source's next one is fetched when it fires (one pending at a time). */
const ARRIVAL = 0;
/** A closed-loop follow-up call (agentic), scheduled when the call before it finished. */
const FOLLOW_UP = 1;
const PREFILL_DONE = 2;
const KV_ARRIVED = 3;
const DECODE_STEP = 4;
const COLO_PREFILL_DONE = 5;
const COLO_STEP = 6;
/** The kinds `schedule` creates (and recycles once handled); the others are events a group owns and reuses. */
const RECYCLED = (1 << ARRIVAL) | (1 << FOLLOW_UP) | (1 << KV_ARRIVED) | (1 << COLO_STEP);

interface SimEvent {
  kind: number;
  group: number;
  req: Request | null;
  arrival: Arrival | null;
  version: number;
}

/**
 * A request in the system, recycled once it has finished (`Requests`). It copies what the run reads of its
 * arrival, so touching it does not touch that too; its arrival and first-token times are in `Requests.times`.
 */
class Request implements BatchedSequence {
  reservedTokens = 0;
  joinStep = 0;
  joinContext = 0;
  prefillGroup = -1;
  decodeGroup = -1;
  inputTokens = 0;
  outputTokens = 0;
  /** Arrived in the measurement window. */
  inWindow = false;
  /** Kept for the source's `followUp` (null when the source has none: it would be garbage kept alive). */
  arrival: Arrival | null = null;
  constructor(readonly slot: number) {}
}

/**
 * The requests in the system. A finished request's object is reused for a later arrival, and the two times
 * each one carries live in one array of doubles (arrival at 2·slot, first token at 2·slot + 1): at millions of
 * requests an hour, allocating each and boxing its doubles made most of the run's garbage and cache misses.
 */
class Requests {
  times = new Float64Array(2048);
  private readonly spare: Request[] = [];
  private created = 0;

  take(a: Arrival, w0: number, w1: number, keepArrival: boolean): Request {
    let r = this.spare.pop();
    if (r === undefined) {
      r = new Request(this.created++);
      if (2 * this.created > this.times.length) {
        const bigger = new Float64Array(2 * this.times.length);
        bigger.set(this.times);
        this.times = bigger;
      }
    }
    r.reservedTokens = 0;
    r.joinStep = 0;
    r.joinContext = 0;
    r.prefillGroup = -1;
    r.decodeGroup = -1;
    r.inputTokens = a.inputTokens;
    r.outputTokens = a.outputTokens;
    r.inWindow = a.time >= w0 && a.time < w1;
    r.arrival = keepArrival ? a : null;
    this.times[2 * r.slot] = a.time;
    this.times[2 * r.slot + 1] = Number.NaN;
    return r;
  }

  /** `r` has finished and nothing refers to it any more. */
  give(r: Request): void {
    r.arrival = null;
    this.spare.push(r);
  }
}

interface SimView extends WorkerView {
  inFlight: number;
  /** Decode views: KV tokens not yet promised to a request placed there (placement prefers a worker with room). */
  kvFreeTokens?: number;
  readonly group: number;
}

class Group {
  busyS = 0;
  private busySince = -1;
  occupancyS = 0;
  peakTokens = 0;
  peakSequences = 0;
  constructor(readonly index: number, readonly cell: number, readonly pool: PoolSpec, readonly steps: StepTimes, readonly limits: BatchLimits) {}
  setBusy(now: number, busy: boolean, w0: number, w1: number): void {
    if (busy && this.busySince < 0) this.busySince = now;
    else if (!busy && this.busySince >= 0) {
      this.busyS += overlap(this.busySince, now, w0, w1);
      this.busySince = -1;
    }
  }
  notePeak(sequences: number, tokens: number): void {
    if (tokens > this.peakTokens) this.peakTokens = tokens;
    if (sequences > this.peakSequences) this.peakSequences = sequences;
  }
}

class PrefillGroup extends Group {
  readonly queue = new Fifo<Request>();
  /** The forward in flight: the first `running` entries (the array is kept between forwards). */
  readonly current: Request[] = [];
  running = 0;
  /** admitFromQueue's `tokensAt`: the i-th queued prompt. */
  readonly promptAt = (i: number) => this.queue.at(i).inputTokens;
  view!: SimView;
  /** The group's one pending forward-done event, reused (a group runs one forward at a time). */
  readonly done: SimEvent = { kind: PREFILL_DONE, group: this.index, req: null, arrival: null, version: 0 };
}

class DecodeGroup extends Group {
  readonly waiting = new Fifo<Request>();
  readonly batch = new DecodeBatch<Request>();
  /** admitFromQueue's arguments, kept per group: the batch's use (set before each call) and the i-th waiting sequence. */
  readonly usage = { sequences: 0, tokens: 0 };
  readonly sequenceAt = (i: number) => {
    const r = this.waiting.at(i);
    return r.inputTokens + r.outputTokens;
  };
  stepping = false;
  stepStart = 0;
  view!: SimView;
  /** The group's one pending step-done event, reused (steps never overlap). */
  readonly stepDone: SimEvent = { kind: DECODE_STEP, group: this.index, req: null, arrival: null, version: 0 };
}

class ColocatedGroup extends Group {
  readonly queue = new Fifo<Request>();
  readonly batch = new DecodeBatch<Request>();
  readonly usage = { sequences: 0, tokens: 0 };
  readonly sequenceAt = (i: number) => {
    const r = this.queue.at(i);
    return r.inputTokens + r.outputTokens;
  };
  prefilling: Request[] = [];
  prefillAlone = 0;
  pendingJoin: Request[] = [];
  usedSequences = 0;
  usedTokens = 0;
  stepping = false;
  stepStart = 0;
  stepAlone = 0;
  workLeft = 0;
  rate = 1;
  lastUpdate = 0;
  version = 0;
  prefillView!: SimView;
  decodeView!: SimView;
  readonly prefillDone: SimEvent = { kind: COLO_PREFILL_DONE, group: this.index, req: null, arrival: null, version: 0 };
}

interface Cell {
  readonly views: SimView[];
  readonly queue: Fifo<Request>;
  tieBreak: number;
}

/** The simulator's view is exact (no heartbeat lag), so nothing is assigned beyond what the views report. */
const NO_ASSIGNMENTS: ReadonlyMap<string, number> = new Map();
/** The live gateway's placement parameters (actors/request/gateway.ts). */
const PLACEMENT: PlacementPolicy = { maxLoad: DEFAULT_MAX_LOAD, translationCost: kvMoveCost };
const EMPTY: BatchUsage = { sequences: 0, tokens: 0 };

/** Root-mean-square prompt length of the first `n` requests of a prefill batch: the attention term (∝ T²) exactly, the dense term within a few %. */
const rmsTokens = (reqs: readonly Request[], n: number) => {
  let squares = 0;
  for (let i = 0; i < n; i++) squares += reqs[i]!.inputTokens ** 2;
  return Math.round(Math.sqrt(squares / n));
};

/**
 * The run's clock and running sums. Fields of one object rather than `let`s the closures below share: V8 keeps
 * a double held in a closure's variable as a heap number allocated on every assignment, and `now` changes at
 * every event, while an object's double field is updated in place.
 */
class RunState {
  now = 0;
  inSystemArea = 0;
  lastChange = 0;
  transferSum = 0;
  goodTokens = 0;
  tokensCompletedInWindow = 0;
}

export function simulate(input: SimInput): SimResult {
  const { cluster, arrivals, slo, seconds } = input;
  const { model, dtype, topology } = cluster;
  const w0 = input.warmupSeconds ?? 0.2 * seconds;
  const w1 = seconds;
  if (!(seconds > 0) || !(w0 >= 0 && w0 < w1)) throw new SimError(`need 0 ≤ warmup < seconds, got warmup ${w0}, seconds ${seconds}`);
  const stopAt = seconds + (input.drainSeconds ?? seconds);
  const G = cluster.gateways;
  if (!Number.isInteger(G) || G < 1) throw new SimError(`gateways must be a positive integer, got ${G}`);
  for (const p of pools(topology)) {
    if (!Number.isInteger(p.groups) || p.groups < G) throw new SimError(`each pool needs at least one group per gateway: ${p.groups} groups of ${p.chip.id} for ${G} gateways`);
    if (!Number.isInteger(p.batch) || p.batch < 1) throw new SimError(`batch must be a positive integer, got ${p.batch}`);
  }
  const cells: Cell[] = Array.from({ length: G }, () => ({ views: [], queue: new Fifo<Request>(), tieBreak: 0 }));
  const view = (id: string, role: "prefill" | "decode", kvFormat: string, capacity: number, group: number, cell: number, kvTokens?: number): SimView => {
    const v: SimView = { id, role, model: model.id, kvFormat, inFlight: 0, capacity, group, ...(kvTokens === undefined ? {} : { kvCapacityTokens: kvTokens, kvFreeTokens: kvTokens }) };
    cells[cell]!.views.push(v);
    return v;
  };

  const prefills: PrefillGroup[] = [];
  const decodes: DecodeGroup[] = [];
  const colos: ColocatedGroup[] = [];
  if (topology.kind === "disaggregated") {
    const pSteps = stepTimes(topology.prefill.chip, model, topology.prefill.tp, dtype);
    const dSteps = stepTimes(topology.decode.chip, model, topology.decode.tp, dtype);
    for (let i = 0; i < topology.prefill.groups; i++) {
      const g = new PrefillGroup(i, i % G, topology.prefill, pSteps, { maxSequences: topology.prefill.batch, maxTokens: pSteps.kvTokenBudget });
      g.view = view(`p${i}`, "prefill", "kv", topology.prefill.batch, i, g.cell);
      prefills.push(g);
    }
    for (let i = 0; i < topology.decode.groups; i++) {
      const g = new DecodeGroup(i, i % G, topology.decode, dSteps, { maxSequences: topology.decode.batch, maxTokens: dSteps.kvTokenBudget });
      g.view = view(`d${i}`, "decode", "kv", topology.decode.batch, i, g.cell, dSteps.kvTokenBudget);
      decodes.push(g);
    }
  } else {
    const steps = stepTimes(topology.pool.chip, model, topology.pool.tp, dtype);
    for (let i = 0; i < topology.pool.groups; i++) {
      const g = new ColocatedGroup(i, i % G, topology.pool, steps, { maxSequences: topology.pool.batch, maxTokens: steps.kvTokenBudget });
      // A KV format of its own (kvMoveCost knows no translation between two of them): the only pair placement
      // can return is (this group, this group).
      g.prefillView = view(`c${i}`, "prefill", `local:c${i}`, topology.pool.batch, i, g.cell);
      g.decodeView = view(`c${i}`, "decode", `local:c${i}`, topology.pool.batch, i, g.cell, steps.kvTokenBudget);
      colos.push(g);
    }
  }
  const link = topology.kind === "disaggregated" ? topology.link : null;
  const coloPrefillBatch = topology.kind === "colocated" ? topology.prefillBatch : 1;
  const crossVendor = topology.kind === "disaggregated" && topology.prefill.chip.vendor !== topology.decode.chip.vendor;
  const kvBytesPerToken = model.kv_bytes_per_token[dtype];

  const queue = new EventQueue<SimEvent>();
  /** Handled events of the recycled kinds, for `schedule` to reuse. */
  const spare: SimEvent[] = [];
  const schedule = (time: number, kind: number, group: number, req: Request | null, arrival: Arrival | null = null, version = 0) => {
    const ev = spare.pop();
    if (ev === undefined) return queue.push(time, { kind, group, req, arrival, version });
    ev.kind = kind;
    ev.group = group;
    ev.req = req;
    ev.arrival = arrival;
    ev.version = version;
    queue.push(time, ev);
  };

  // --- measurement ---
  const run = new RunState();
  const requests = new Requests();
  /** Whether finished requests can make follow-up calls (agentic sessions); open-loop sources make none. */
  const closedLoop = arrivals.followUp !== noFollowUp;
  let events = 0;
  let arrivedInWindow = 0;
  let finishedInWindow = 0;
  let metInWindow = 0;
  let completedInWindow = 0;
  let inSystem = 0;
  let transfers = 0;
  const ttft = new Samples();
  const tpot = new Samples();
  const latency = new Samples();
  const changeInSystem = (delta: number) => {
    run.inSystemArea += inSystem * overlap(run.lastChange, run.now, w0, w1);
    run.lastChange = run.now;
    inSystem += delta;
  };
  let roundRobin = 0;
  let finishedTotal = 0;

  const finish = (r: Request) => {
    finishedTotal++;
    const kvTokens = r.inputTokens + r.outputTokens;
    if (topology.kind === "disaggregated") {
      const v = decodes[r.decodeGroup]!.view;
      v.inFlight--;
      v.kvFreeTokens! += kvTokens;
    } else {
      const g = colos[r.prefillGroup]!;
      g.prefillView.inFlight--;
      g.decodeView.inFlight--;
      g.decodeView.kvFreeTokens! += kvTokens;
      g.usedSequences--;
      g.usedTokens -= r.reservedTokens;
    }
    changeInSystem(-1);
    if (run.now >= w0 && run.now < w1) {
      completedInWindow++;
      run.tokensCompletedInWindow += r.inputTokens + r.outputTokens;
    }
    if (r.inWindow) {
      finishedInWindow++;
      const times = requests.times;
      const arrived = times[2 * r.slot]!;
      const firstToken = times[2 * r.slot + 1]!;
      const first = firstToken - arrived;
      const perToken = r.outputTokens > 1 ? (run.now - firstToken) / (r.outputTokens - 1) : 0;
      ttft.push(first);
      tpot.push(perToken);
      latency.push(run.now - arrived);
      if (first * 1000 <= slo.ttftMs && perToken * 1000 <= slo.tpotMs) {
        metInWindow++;
        run.goodTokens += r.inputTokens + r.outputTokens;
      }
    }
    if (closedLoop) {
      const next = arrivals.followUp(r.arrival!, run.now);
      if (next) schedule(next.time, FOLLOW_UP, -1, null, next);
    }
    requests.give(r);
  };

  // --- disaggregated ---
  const tryPrefill = (g: PrefillGroup) => {
    if (g.running > 0 || g.queue.length === 0) return;
    const n = admitFromQueue(EMPTY, g.limits, g.queue.length, g.promptAt);
    if (n === 0) throw new SimError(`a ${g.queue.at(0).inputTokens}-token prompt does not fit in the memory of a ${g.pool.chip.id} TP${g.pool.tp} prefill group`);
    const batch = g.current;
    let tokens = 0;
    for (let i = 0; i < n; i++) {
      const r = g.queue.shift()!;
      batch[i] = r;
      tokens += r.inputTokens;
    }
    g.running = n;
    g.notePeak(n, tokens);
    g.setBusy(run.now, true, w0, w1);
    queue.push(run.now + g.steps.prefill(rmsTokens(batch, n), n), g.done);
  };

  const admitDecode = (g: DecodeGroup) => {
    const b = g.batch;
    g.usage.sequences = b.running;
    g.usage.tokens = b.reservedTokens;
    const n = admitFromQueue(g.usage, g.limits, g.waiting.length, g.sequenceAt);
    if (n === 0 && b.running === 0 && g.waiting.length > 0) {
      const a = g.waiting.at(0);
      throw new SimError(`a ${a.inputTokens}+${a.outputTokens}-token sequence does not fit in the KV memory of a ${g.pool.chip.id} TP${g.pool.tp} decode group (${g.steps.kvTokenBudget} tokens)`);
    }
    for (let i = 0; i < n; i++) {
      const r = g.waiting.shift()!;
      b.join(r, r.inputTokens, r.inputTokens + r.outputTokens, r.outputTokens - 1);
    }
    g.notePeak(b.running, b.reservedTokens);
  };

  const startDecodeStep = (g: DecodeGroup) => {
    const b = g.batch;
    if (b.running === 0) {
      g.stepping = false;
      g.setBusy(run.now, false, w0, w1);
      return;
    }
    g.stepping = true;
    g.stepStart = run.now;
    g.setBusy(run.now, true, w0, w1);
    queue.push(run.now + g.steps.decode(b.running, b.sumContext), g.stepDone);
  };

  // --- colocated ---
  const setStepRate = (g: ColocatedGroup, rate: number) => {
    g.workLeft -= (run.now - g.lastUpdate) * g.rate;
    g.lastUpdate = run.now;
    g.rate = rate;
    g.version++;
    schedule(run.now + g.workLeft / rate, COLO_STEP, g.index, null, null, g.version);
  };
  const overlappedRate = (g: ColocatedGroup) => g.stepAlone / decodeStepDuringPrefill(g.stepAlone, g.prefillAlone);

  const tryColoPrefill = (g: ColocatedGroup, prefillBatch: number) => {
    if (g.prefilling.length > 0 || g.queue.length === 0) return;
    g.usage.sequences = g.usedSequences;
    g.usage.tokens = g.usedTokens;
    const n = admitFromQueue(g.usage, g.limits, Math.min(g.queue.length, prefillBatch), g.sequenceAt);
    if (n === 0) {
      if (g.usedSequences === 0) {
        const a = g.queue.at(0);
        throw new SimError(`a ${a.inputTokens}+${a.outputTokens}-token sequence does not fit in the KV memory of a ${g.pool.chip.id} TP${g.pool.tp} group (${g.steps.kvTokenBudget} tokens)`);
      }
      return;
    }
    const batch: Request[] = [];
    for (let i = 0; i < n; i++) {
      const r = g.queue.shift()!;
      r.reservedTokens = r.inputTokens + r.outputTokens;
      g.usedSequences++;
      g.usedTokens += r.reservedTokens;
      batch.push(r);
    }
    g.notePeak(g.usedSequences, g.usedTokens);
    g.prefilling = batch;
    g.prefillAlone = g.steps.prefill(rmsTokens(batch, n), n);
    const b = g.batch;
    const duration = b.running > 0 ? prefillUnderDecode(g.prefillAlone, g.stepping ? g.stepAlone : g.steps.decode(b.running, b.sumContext)) : g.prefillAlone;
    g.setBusy(run.now, true, w0, w1);
    queue.push(run.now + duration, g.prefillDone);
    if (g.stepping) setStepRate(g, overlappedRate(g));
  };

  const startColoStep = (g: ColocatedGroup) => {
    const b = g.batch;
    for (const r of g.pendingJoin) b.join(r, r.inputTokens, r.reservedTokens, r.outputTokens - 1);
    g.pendingJoin = [];
    if (b.running === 0) {
      g.stepping = false;
      g.setBusy(run.now, g.prefilling.length > 0, w0, w1);
      return;
    }
    g.stepping = true;
    g.stepStart = run.now;
    g.stepAlone = g.steps.decode(b.running, b.sumContext);
    g.workLeft = g.stepAlone;
    g.lastUpdate = run.now;
    g.rate = g.prefilling.length > 0 ? overlappedRate(g) : 1;
    g.version++;
    g.setBusy(run.now, true, w0, w1);
    schedule(run.now + g.workLeft / g.rate, COLO_STEP, g.index, null, null, g.version);
  };

  // --- routing ---
  const route = (cell: Cell) => {
    while (cell.queue.length > 0) {
      const head = cell.queue.at(0);
      const kvTokens = head.inputTokens + head.outputTokens;
      const pick = placeRequest(cell.views, NO_ASSIGNMENTS, { model: model.id, kvTokens }, cell.tieBreak++, PLACEMENT);
      if (pick._tag === "Saturated") return;
      if (pick._tag !== "Picked") throw new SimError(`routing failed: ${pick._tag}`);
      const r = cell.queue.shift()!;
      const p = pick.prefill as SimView;
      const d = pick.decode as SimView;
      p.inFlight++;
      d.inFlight++;
      d.kvFreeTokens! -= kvTokens;
      r.prefillGroup = p.group;
      r.decodeGroup = d.group;
      if (topology.kind === "disaggregated") {
        const g = prefills[p.group]!;
        g.queue.push(r);
        tryPrefill(g);
      } else {
        const g = colos[p.group]!;
        g.queue.push(r);
        tryColoPrefill(g, coloPrefillBatch);
      }
    }
  };

  const first = arrivals.next();
  if (!first) throw new SimError("the arrival source produced no request");
  schedule(first.time, ARRIVAL, -1, null, first);
  while (queue.size > 0) {
    if (queue.peekTime() > stopAt) break;
    run.now = queue.peekTime();
    const ev = queue.pop()!;
    events++;
    if ((events & (PROGRESS_EVENTS - 1)) === 0) input.onProgress?.(run.now, events);
    switch (ev.kind) {
      case ARRIVAL:
      case FOLLOW_UP: {
        const a = ev.arrival!;
        if (ev.kind === ARRIVAL) {
          const next = arrivals.next();
          if (next) schedule(next.time, ARRIVAL, -1, null, next);
        }
        const cell = cells[roundRobin++ % G]!;
        const r = requests.take(a, w0, w1, closedLoop);
        changeInSystem(1);
        if (r.inWindow) arrivedInWindow++;
        cell.queue.push(r);
        route(cell);
        break;
      }
      case PREFILL_DONE: {
        const g = prefills[ev.group]!;
        for (let i = 0; i < g.running; i++) {
          const r = g.current[i]!;
          requests.times[2 * r.slot + 1] = run.now;
          g.view.inFlight--;
          if (r.outputTokens <= 1) finish(r);
          else {
            const t = kvTransferSeconds(link!, model, r.inputTokens, kvBytesPerToken, crossVendor);
            run.transferSum += t;
            transfers++;
            schedule(run.now + t, KV_ARRIVED, r.decodeGroup, r);
          }
        }
        g.running = 0;
        g.setBusy(run.now, false, w0, w1);
        tryPrefill(g);
        route(cells[g.cell]!);
        break;
      }
      case KV_ARRIVED: {
        const g = decodes[ev.group]!;
        g.waiting.push(ev.req!);
        if (!g.stepping) {
          admitDecode(g);
          startDecodeStep(g);
        }
        break;
      }
      case DECODE_STEP: {
        const g = decodes[ev.group]!;
        const finishedBefore = finishedTotal;
        g.occupancyS += g.batch.running * overlap(g.stepStart, run.now, w0, w1);
        g.batch.step();
        for (let r = g.batch.nextFinished(); r !== undefined; r = g.batch.nextFinished()) finish(r);
        admitDecode(g);
        startDecodeStep(g);
        if (finishedTotal > finishedBefore) route(cells[g.cell]!);
        break;
      }
      case COLO_PREFILL_DONE: {
        const g = colos[ev.group]!;
        const finishedBefore = finishedTotal;
        for (const r of g.prefilling) {
          requests.times[2 * r.slot + 1] = run.now;
          if (r.outputTokens <= 1) finish(r);
          else g.pendingJoin.push(r);
        }
        g.prefilling = [];
        if (g.stepping) setStepRate(g, 1);
        else startColoStep(g);
        tryColoPrefill(g, coloPrefillBatch);
        g.setBusy(run.now, g.stepping || g.prefilling.length > 0, w0, w1);
        if (finishedTotal > finishedBefore) route(cells[g.cell]!);
        break;
      }
      case COLO_STEP: {
        const g = colos[ev.group]!;
        if (ev.version !== g.version) break; // rescheduled when a prefill started or ended
        g.occupancyS += g.batch.running * overlap(g.stepStart, run.now, w0, w1);
        const finishedBefore = finishedTotal;
        g.batch.step();
        for (let r = g.batch.nextFinished(); r !== undefined; r = g.batch.nextFinished()) finish(r);
        g.stepping = false;
        tryColoPrefill(g, coloPrefillBatch);
        startColoStep(g);
        if (finishedTotal > finishedBefore) route(cells[g.cell]!);
        break;
      }
    }
    if ((RECYCLED >> ev.kind) & 1) {
      ev.req = null;
      ev.arrival = null;
      spare.push(ev);
    }
  }
  const end = run.now;
  for (const g of [...prefills, ...decodes, ...colos]) g.setBusy(Math.max(end, w1), false, w0, w1);
  run.now = Math.max(end, w1);
  changeInSystem(0);

  const window = w1 - w0;
  const usage = (role: PoolUsage["role"], pool: PoolSpec, groups: readonly Group[], decodeCapable: boolean): PoolUsage => ({
    role,
    chip: pool.chip.id,
    groups: pool.groups,
    tp: pool.tp,
    utilisation: groups.reduce((s, g) => s + g.busyS, 0) / (groups.length * window),
    occupancy: decodeCapable ? groups.reduce((s, g) => s + g.occupancyS, 0) / (groups.length * window * pool.batch) : null,
    peakKvTokens: Math.max(...groups.map((g) => g.peakTokens)),
    kvTokenBudget: groups[0]!.steps.kvTokenBudget,
    peakSequences: Math.max(...groups.map((g) => g.peakSequences)),
    maxSequences: pool.batch,
  });
  const poolUsage = topology.kind === "disaggregated"
    ? [usage("prefill", topology.prefill, prefills, false), usage("decode", topology.decode, decodes, true)]
    : [usage("colocated", topology.pool, colos, true)];
  const dollars = (usdPerHour(cluster) * window) / 3600;
  const ttftSorted = ttft.sorted();
  const tpotSorted = tpot.sorted();
  return {
    summary: {
      cluster: describeTopology(topology),
      devices: deviceCount(topology),
      usdPerHour: usdPerHour(cluster),
      slo,
      window: { start: w0, end: w1 },
      endTime: end,
      events,
      requests: { arrived: arrivedInWindow, completed: finishedInWindow, unfinished: arrivedInWindow - finishedInWindow },
      offeredRate: arrivedInWindow / window,
      ttftS: distribution(ttftSorted),
      tpotS: distribution(tpotSorted),
      latencyS: distribution(latency.sorted()),
      sloAttainment: arrivedInWindow ? metInWindow / arrivedInWindow : Number.NaN,
      throughput: { requestsPerS: completedInWindow / window, tokensPerS: run.tokensCompletedInWindow / window },
      meanInSystem: run.inSystemArea / window,
      pools: poolUsage,
      meanKvTransferS: transfers ? run.transferSum / transfers : null,
      usdPerMtok: dollars / (run.tokensCompletedInWindow / 1e6),
      usdPerMtokWithinSlo: dollars / (run.goodTokens / 1e6),
    },
    samples: { ttftS: ttftSorted, tpotS: tpotSorted },
  };
}
