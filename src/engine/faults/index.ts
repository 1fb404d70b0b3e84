// Vendor fault classifiers, the class → action policy and seeded fault injection.
export * from "./rules.ts";
export * from "./nvidia.ts";
export * from "./amd.ts";
export * from "./intel-gaudi.ts";
export * from "./cpu-llama.ts";
export * from "./vendors.ts";
export * from "./policy.ts";
export * from "./fault-schedule.ts";
