/**
 * Which labels a PromQL expression's result carries, and where it names a label its input does not have.
 *
 * Static inference over the Prometheus project's grammar (@prometheus-io/lezer-promql): a selector carries the labels
 * of its series, an aggregation `by` its grouping labels, `without` what remains, a binary operation its left side's
 * (plus `group_left` labels), `label_replace`/`label_join` add their target. A problem is a name the expression uses
 * that cannot exist where it is used: a matcher, a grouping label, an `on`/`ignoring`/`group_*` label, a
 * `label_replace` source, a histogram without `le`, or two sides of a one-to-one match with different label sets
 * (which match nothing). Such an expression parses, runs and returns nothing: the drift this module exists to catch.
 */
import { parser } from "@prometheus-io/lezer-promql";

/** Labels of a result; `any` where the input's labels are not known (the expression reads an unlisted series). */
export type Labels = ReadonlySet<string> | "any";

interface Value {
    readonly kind: "vector" | "scalar" | "string";
    readonly labels: Labels;
}

type SyntaxNode = ReturnType<ReturnType<typeof parser.parse>["topNode"]["getChild"]> & object;

const SCALAR: Value = { kind: "scalar", labels: new Set() };
const STRING: Value = { kind: "string", labels: new Set() };

/** Functions whose result has no labels (or is a scalar). */
const SCALAR_FUNCTIONS = new Set(["scalar", "time", "pi", "day_of_month", "hour", "minute", "month", "year"]);

/** Children that are expressions (not keywords, modifiers or literals of the call's syntax). */
function exprChildren(node: SyntaxNode): SyntaxNode[] {
    const out: SyntaxNode[] = [];
    for (let c = node.firstChild; c; c = c.nextSibling) {
        if (/Expr$|Selector$|FunctionCall$|Literal$/.test(c.name) && c.name !== "DurationExpr") out.push(c);
    }
    return out;
}

function labelNames(node: SyntaxNode | null, text: string): string[] {
    if (!node) return [];
    return node.getChildren("LabelName").map((n) => text.slice(n.from, n.to));
}

function unquote(s: string): string {
    return JSON.parse(s.startsWith("'") ? `"${s.slice(1, -1).replace(/"/g, '\\"')}"` : s) as string;
}

export interface Inference {
    readonly labels: Labels;
    readonly problems: string[];
}

/**
 * Infer the labels of `expr`'s result. `seriesLabels(name)` gives the labels of a stored series (undefined when
 * unknown: that selector's result is then `any` and nothing is checked against it). Grafana's `$__rate_interval`
 * and friends are replaced by `5m` first.
 */
export function inferLabels(expr: string, seriesLabels: (name: string) => ReadonlySet<string> | undefined): Inference {
    const text = expr.replace(/\$__(rate_interval|interval|range)/g, "5m");
    const problems: string[] = [];
    const at = (n: SyntaxNode): string => text.slice(n.from, n.to);
    const has = (labels: Labels, l: string): boolean => labels === "any" || labels.has(l);
    const need = (labels: Labels, l: string, where: string): void => {
        if (!has(labels, l))
            problems.push(`${where}: label "${l}" is not on [${[...(labels as Set<string>)].sort().join(", ")}]`);
    };
    const minus = (labels: Labels, drop: string[]): Labels =>
        labels === "any" ? "any" : new Set([...labels].filter((l) => !drop.includes(l)));
    const same = (a: Labels, b: Labels): boolean =>
        a === "any" || b === "any" || (a.size === b.size && [...a].every((l) => b.has(l)));
    const show = (l: Labels): string => (l === "any" ? "any" : `{${[...l].sort().join(", ")}}`);

    function visit(node: SyntaxNode): Value {
        switch (node.name) {
            case "PromQL":
            case "ParenExpr":
            case "MatrixSelector":
            case "SubqueryExpr":
            case "OffsetExpr":
            case "StepInvariantExpr":
            case "UnaryExpr":
                return visit(exprChildren(node)[0]);
            case "NumberDurationLiteral":
                return SCALAR;
            case "StringLiteral":
                return STRING;
            case "VectorSelector":
                return selector(node);
            case "FunctionCall":
                return call(node);
            case "AggregateExpr":
                return aggregate(node);
            case "BinaryExpr":
                return binary(node);
            default:
                problems.push(`unhandled ${node.name} in ${JSON.stringify(at(node))}`);
                return { kind: "vector", labels: "any" };
        }
    }

    function selector(node: SyntaxNode): Value {
        const id = node.getChild("Identifier");
        const matchers = node.getChild("LabelMatchers");
        const all = matchers
            ? [...matchers.getChildren("UnquotedLabelMatcher"), ...matchers.getChildren("QuotedLabelMatcher")]
            : [];
        let name = id ? at(id) : undefined;
        const rest: { label: string; value: string }[] = [];
        for (const m of all) {
            const ln = m.getChild("LabelName") ?? m.getChild("QuotedLabelName");
            const label = ln!.name === "QuotedLabelName" ? unquote(at(ln!)) : at(ln!);
            const lits = m.getChildren("StringLiteral");
            const value = unquote(at(lits[lits.length - 1]));
            if (label === "__name__" && at(m.getChild("MatchOp")!) === "=") name = value;
            else if (label !== "__name__") rest.push({ label, value });
        }
        const labels: Labels = (name && seriesLabels(name)) || "any";
        // A matcher on a label the series lacks matches only the empty value: fine when that is the intent.
        for (const m of rest) if (m.value !== "") need(labels, m.label, `${name ?? at(node)}{${m.label}}`);
        return { kind: "vector", labels };
    }

    function call(node: SyntaxNode): Value {
        const fn = at(node.getChild("FunctionIdentifier")!);
        const args = exprChildren(node.getChild("FunctionCallBody")!).map((a) => ({ node: a, value: visit(a) }));
        if (SCALAR_FUNCTIONS.has(fn) && (fn === "scalar" || fn === "time" || fn === "pi" || args.length === 0))
            return SCALAR;
        if (fn === "vector") return { kind: "vector", labels: new Set() };
        if (fn === "absent" || fn === "absent_over_time") return { kind: "vector", labels: "any" };
        const input = args.find((a) => a.value.kind === "vector")?.value ?? { kind: "vector", labels: new Set() };
        const strings = args.filter((a) => a.value.kind === "string").map((a) => unquote(at(a.node)));
        if (fn === "label_replace") {
            const [dst, , src] = strings;
            if (src !== "") need(input.labels, src, `label_replace(..., "${src}")`);
            return { kind: "vector", labels: input.labels === "any" ? "any" : new Set([...input.labels, dst]) };
        }
        if (fn === "label_join") {
            const [dst, , ...srcs] = strings;
            for (const s of srcs) need(input.labels, s, `label_join(..., "${s}")`);
            return { kind: "vector", labels: input.labels === "any" ? "any" : new Set([...input.labels, dst]) };
        }
        if (fn === "histogram_quantile") {
            need(input.labels, "le", "histogram_quantile");
            return { kind: "vector", labels: minus(input.labels, ["le"]) };
        }
        return { kind: "vector", labels: input.labels };
    }

    function aggregate(node: SyntaxNode): Value {
        const op = at(node.getChild("AggregateOp")!);
        const args = exprChildren(node.getChild("FunctionCallBody")!).map((a) => ({ node: a, value: visit(a) }));
        const input = args[args.length - 1].value.labels;
        const mod = node.getChild("AggregateModifier");
        const grouping = labelNames(mod?.getChild("GroupingLabels") ?? null, text);
        for (const l of grouping) need(input, l, `${op} ${mod ? at(mod) : ""}`);
        if (op === "topk" || op === "bottomk" || op === "limitk" || op === "limit_ratio")
            return { kind: "vector", labels: input };
        let labels: Labels;
        if (!mod) labels = new Set();
        else if (mod.getChild("Without")) labels = minus(input, grouping);
        else labels = new Set(grouping);
        if (op === "count_values") {
            const dst = unquote(at(args[0].node));
            labels = labels === "any" ? "any" : new Set([...labels, dst]);
        }
        return { kind: "vector", labels };
    }

    function binary(node: SyntaxNode): Value {
        const [l, r] = exprChildren(node);
        const left = visit(l);
        const right = visit(r);
        if (left.kind !== "vector") return right.kind === "vector" ? right : SCALAR;
        if (right.kind !== "vector") return left;
        const opNode = l.nextSibling!;
        const op = at(opNode);
        const mod = node.getChild("MatchingModifierClause");
        const where = JSON.stringify(at(node).slice(0, 120));
        if (op === "or") {
            const labels: Labels =
                left.labels === "any" || right.labels === "any" ? "any" : new Set([...left.labels, ...right.labels]);
            return { kind: "vector", labels };
        }
        if (!mod) {
            if (!same(left.labels, right.labels))
                problems.push(
                    `${where}: one-to-one match of ${show(left.labels)} with ${show(right.labels)} matches nothing`,
                );
            return { kind: "vector", labels: left.labels };
        }
        const groups = mod.getChildren("GroupingLabels");
        const matching = labelNames(groups[0], text);
        const extra = labelNames(groups[1] ?? null, text);
        const isOn = !!mod.getChild("On");
        const left1 = !!mod.getChild("GroupLeft");
        const right1 = !!mod.getChild("GroupRight");
        if (isOn) {
            for (const m of matching) {
                need(left.labels, m, `${where} on(${m}), left side`);
                need(right.labels, m, `${where} on(${m}), right side`);
            }
        } else {
            for (const m of matching)
                if (!has(left.labels, m) && !has(right.labels, m))
                    problems.push(`${where}: ignoring(${m}) on neither side`);
            if (!left1 && !right1 && !same(minus(left.labels, matching), minus(right.labels, matching)))
                problems.push(
                    `${where}: one-to-one match ignoring(${matching.join(", ")}) of ${show(left.labels)} with ${show(right.labels)} matches nothing`,
                );
        }
        if (left1) {
            for (const e of extra) need(right.labels, e, `${where} group_left(${e})`);
            return { kind: "vector", labels: left.labels === "any" ? "any" : new Set([...left.labels, ...extra]) };
        }
        if (right1) {
            for (const e of extra) need(left.labels, e, `${where} group_right(${e})`);
            return { kind: "vector", labels: right.labels === "any" ? "any" : new Set([...right.labels, ...extra]) };
        }
        // Set operators return the left side's series as they are; a one-to-one match keeps the `on` labels only.
        if (op === "and" || op === "unless" || !isOn)
            return { kind: "vector", labels: minusIf(op, left.labels, matching) };
        return { kind: "vector", labels: new Set(matching) };
    }

    function minusIf(op: string, labels: Labels, ignored: string[]): Labels {
        return op === "and" || op === "unless" ? labels : minus(labels, ignored);
    }

    const tree = parser.parse(text);
    const top = tree.topNode as SyntaxNode;
    const value = visit(top);
    return { labels: value.labels, problems };
}
