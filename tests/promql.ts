/** PromQL checks with the Prometheus project's own grammar (@prometheus-io/lezer-promql). */
import { parser } from "@prometheus-io/lezer-promql";

/** Parse errors of an expression, as `offset: text` (empty when it parses). */
export function promqlErrors(expr: string): string[] {
    const errors: string[] = [];
    parser.parse(expr).iterate({
        enter(n) {
            if (n.type.isError)
                errors.push(`${n.from}: ${JSON.stringify(expr.slice(Math.max(0, n.from - 10), n.to + 10))}`);
        },
    });
    return errors;
}

/**
 * The metric names an expression reads: each vector selector's name, or its `__name__` matcher. Regex `__name__`
 * matchers are returned as `~<regex>` for the caller to expand.
 */
export function selectedMetrics(expr: string): string[] {
    const names: string[] = [];
    parser.parse(expr).iterate({
        enter(n) {
            if (n.name !== "VectorSelector") return;
            const id = n.node.getChild("Identifier");
            if (id) {
                names.push(expr.slice(id.from, id.to));
                return false;
            }
            const text = expr.slice(n.from, n.to);
            const m = /__name__\s*(=~|=)\s*"((?:[^"\\]|\\.)*)"/.exec(text);
            if (m) names.push(m[1] === "=" ? m[2] : `~${m[2].replace(/\\\\/g, "\\")}`);
            return false;
        },
    });
    return names;
}
