/** The metric catalog: every metric, label and recorded series name the project reads or writes. */
export * from "./datamodel";
export * from "./recorded";
export * from "./gateway";
export * from "./simulator";
export * from "./infra";
export * from "./loadgen";
export * from "./labels";
export * from "./promql";
