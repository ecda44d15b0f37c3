import { expect } from "chai";
import { R, vendorErrorRatio } from "../../catalog";
import { dashboardTargets } from "../../dashboards";
import { Notification, Pipeline, httpPost, startPipeline } from "../../scripts/pipeline";

/**
 * The generated stack running for real on 127.0.0.1 (scripts/pipeline.ts, fast intervals): every dashboard query
 * returns data; injected faults page with the right vendor and resolve; Prometheus keeps its data across a restart.
 */
async function eventually<T>(what: string, ms: number, check: () => Promise<T | undefined>): Promise<T> {
    const deadline = Date.now() + ms;
    let last: unknown;
    while (Date.now() < deadline) {
        try {
            const v = await check();
            if (v !== undefined) return v;
        } catch (e) {
            last = e;
        }
        await new Promise((r) => setTimeout(r, 1000));
    }
    throw new Error(`timed out after ${ms} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ""}`);
}

/** What Prometheus and the webhook saw, for a failure message. */
async function diagnosis(p: Pipeline): Promise<string> {
    const alerts = await p.query("ALERTS").catch((e: Error) => [{ metric: { error: e.message } }]);
    const got = p.notifications.map((n) => `${n.status} ${n.labels.alertname} ${n.labels.vendor ?? ""}`);
    return `ALERTS: ${JSON.stringify(alerts.map((a: { metric: unknown }) => a.metric))}\nnotifications: ${got.join("; ")}`;
}

const has = (n: Notification[], status: string, alert: string, vendor: string) =>
    n.some((x) => x.status === status && x.labels.alertname === alert && x.labels.vendor === vendor);
/** The pool the pipeline starts with 5 exit IPs. */
const DEGRADED = "vendor-b/res-eu";

describe("the local pipeline, end to end", function () {
    this.timeout(300_000);
    let p: Pipeline;

    before(async () => {
        // vendor-b's res-eu serves 5 exit IPs from the start (its floor is 100 an hour): the diversity fault.
        p = await startPipeline({
            stack: "dev",
            fast: true,
            requestsPerSecond: 40,
            degradedExitIps: { [DEGRADED]: 5 },
        });
        await eventually("recorded request rates of all vendors", 90_000, async () =>
            (await p.query(R.vendorRequests)).length === p.cfg.vendors.length ? true : undefined,
        );
    });
    after(async () => {
        await p?.stop();
    });

    it("answers every PromQL target of every dashboard with data", async () => {
        const targets = dashboardTargets(p.cfg);
        const asQuery = (e: string) => e.replace(/\$__rate_interval/g, "1m").replace(/\$(cluster|vendor|pool)/g, ".*");
        const empty = await eventually("every dashboard target to return data", 120_000, async () => {
            const missing: string[] = [];
            for (const t of targets)
                if ((await p.query(asQuery(t.expr))).length === 0)
                    missing.push(`${t.dashboard} / ${t.panel}: ${t.expr}`);
            return missing.length === 0 ? missing : undefined;
        }).catch(async (e: Error) => {
            const missing: string[] = [];
            for (const t of targets)
                if ((await p.query(asQuery(t.expr))).length === 0)
                    missing.push(`${t.dashboard} / ${t.panel}: ${t.expr}`);
            throw new Error(`${e.message}\nno data:\n${missing.join("\n")}`);
        });
        expect(empty).to.deep.equal([]);
        expect(targets.length).to.be.greaterThan(50);
    });

    it("pages PoolExitIpDiversityLow for the pool serving 5 exit IPs, not the others, and resolves once it rotates", async () => {
        const [vendor, pool] = DEGRADED.split("/");
        const diversity = (n: Notification) => n.labels.alertname === "PoolExitIpDiversityLow";
        await eventually("PoolExitIpDiversityLow for the degraded pool at the webhook", 150_000, async () =>
            p.notifications.some((n) => diversity(n) && n.status === "firing" && n.labels.pool === pool)
                ? true
                : undefined,
        ).catch(async (e: Error) => {
            throw new Error(`${e.message}\n${await diagnosis(p)}`);
        });
        const pages = p.notifications.filter(diversity);
        for (const n of pages) expect(n.labels).to.include({ vendor, pool, severity: "critical", cluster: "dev" });
        expect(await httpPost(p.simulators[DEGRADED], "/admin/exit-ips?degradedTo=0")).to.equal(200);
        await eventually("PoolExitIpDiversityLow resolved", 150_000, async () =>
            p.notifications.some((n) => diversity(n) && n.status === "resolved") ? true : undefined,
        ).catch(async (e: Error) => {
            throw new Error(`${e.message}\n${await diagnosis(p)}`);
        });
    });

    it("pages with the vendor's label when a pool stops and when a vendor refuses, and resolves after recovery", async () => {
        const down = p.simulators["vendor-b/res-us"];
        const refusing = p.simulators["vendor-c/mobile-us"];
        expect(await httpPost(down, "/admin/outage?seconds=600")).to.equal(200);
        // A third of the answers refused: enough to page, not so many that probes take the only pool down (a vendor
        // refusing everything pages VendorAllPoolsDown instead).
        expect(await httpPost(refusing, "/admin/errors?rate=0.3&status=429")).to.equal(200);
        await eventually(
            "VendorPoolDown (vendor-b) and VendorRefusalsHigh (vendor-c) at the webhook",
            150_000,
            async () =>
                has(p.notifications, "firing", "VendorPoolDown", "vendor-b") &&
                has(p.notifications, "firing", "VendorRefusalsHigh", "vendor-c")
                    ? true
                    : undefined,
        ).catch(async (e: Error) => {
            throw new Error(`${e.message}\n${await diagnosis(p)}`);
        });
        // vendor-c (oxylabs) refusing with 429 is the `client` cause: charged to its side, said by VendorRefusalsHigh,
        // but no SLO error (only `vendor_error` is).
        const value = async (q: string) => Number((await p.query(q))[0]?.value[1] ?? NaN);
        const c = '{vendor="vendor-c"}';
        const shares = {
            client: await value(`${R.vendorCauseRatio}{vendor="vendor-c", cause="client"}`),
            charged: await value(`${R.vendorFaultRatio}${c}`),
            slo: await value(`${vendorErrorRatio("5m")}${c}`),
        };
        expect(shares.client, JSON.stringify(shares)).to.be.greaterThan(0.1);
        expect(shares.charged, JSON.stringify(shares)).to.be.greaterThan(0.1);
        expect(shares.slo, JSON.stringify(shares)).to.be.lessThan(shares.client / 2);
        const pool = p.notifications.find((n) => n.labels.alertname === "VendorPoolDown")!;
        expect(pool.labels).to.include({ vendor: "vendor-b", pool: "res-us", severity: "warning", cluster: "dev" });
        // Healthy vendors stay quiet.
        expect(p.notifications.filter((n) => n.status === "firing" && n.labels.vendor === "vendor-a")).to.deep.equal(
            [],
        );

        expect(await httpPost(down, "/admin/outage?seconds=0")).to.equal(200);
        expect(await httpPost(refusing, "/admin/errors?rate=0")).to.equal(200);
        await eventually("both alerts resolved at the webhook", 150_000, async () =>
            has(p.notifications, "resolved", "VendorPoolDown", "vendor-b") &&
            has(p.notifications, "resolved", "VendorRefusalsHigh", "vendor-c")
                ? true
                : undefined,
        ).catch(async (e: Error) => {
            throw new Error(`${e.message}\n${await diagnosis(p)}`);
        });
    });

    it("pages with the vendor's label when every pool of a vendor dies, and resolves after recovery", async () => {
        const pools = ["vendor-a/dc-us-east", "vendor-a/dc-eu-west"].map((k) => p.simulators[k]);
        for (const sim of pools) expect(await httpPost(sim, "/admin/outage?seconds=600")).to.equal(200);
        const page = (n: Notification) =>
            n.status === "firing" && n.labels.vendor === "vendor-a" && n.labels.severity === "critical";
        await eventually("a critical page for vendor-a at the webhook", 150_000, async () =>
            p.notifications.some(page) ? true : undefined,
        ).catch(async (e: Error) => {
            throw new Error(`${e.message}\n${await diagnosis(p)}`);
        });
        // Whichever pages first (every pool down, or the outage tier of the burn rate), it names the vendor.
        const got = p.notifications.filter(page);
        for (const n of got) {
            expect(["VendorAllPoolsDown", "VendorErrorBudgetBurnFast"]).to.include(n.labels.alertname);
            expect(n.labels).to.include({ vendor: "vendor-a", cluster: "dev" });
        }
        // Every pool down is said too; it resolves when the pools answer again (the burn rate's 30m and 1h windows
        // keep the budget alert up longer, as they should).
        await eventually("VendorAllPoolsDown for vendor-a", 150_000, async () =>
            has(p.notifications, "firing", "VendorAllPoolsDown", "vendor-a") ? true : undefined,
        );
        for (const sim of pools) expect(await httpPost(sim, "/admin/outage?seconds=0")).to.equal(200);
        await eventually("VendorAllPoolsDown resolved", 150_000, async () =>
            has(p.notifications, "resolved", "VendorAllPoolsDown", "vendor-a") ? true : undefined,
        ).catch(async (e: Error) => {
            throw new Error(`${e.message}\n${await diagnosis(p)}`);
        });
    });

    it("counts the load generator's sticky sessions and the bans it reports in them, charged to their pools", async () => {
        const sum = async (q: string) => (await p.query(`sum(${q})`)).reduce((n, x) => n + Number(x.value[1]), 0);
        let got: Record<string, number> = {};
        await eventually("sticky-session requests and bans charged to a pool", 120_000, async () => {
            got = {
                sessionRequests: await sum("proxy_pool_sticky_session_requests_total"),
                poolBans: await sum('proxy_crawler_bans_total{pool!="none"}'),
                recordedPoolBans: await sum(`increase(${R.vendorPoolBans}{pool!="none"}[10m])`),
            };
            return Object.values(got).every((n) => n > 0) ? true : undefined;
        }).catch((e: Error) => {
            throw new Error(`${e.message}: ${JSON.stringify(got)}`);
        });
    });

    it("keeps its data across a Prometheus restart (WAL)", async () => {
        const q = 'count_over_time(up{job="proxy-gateways"}[10m])';
        const before = Math.max(...(await p.query(q)).map((s) => Number(s.value[1])));
        expect(before).to.be.greaterThan(10);
        await p.restartPrometheus();
        const after = await eventually("samples after the restart", 30_000, async () => {
            const r = await p.query(q);
            return r.length > 0 ? Math.max(...r.map((s) => Number(s.value[1]))) : undefined;
        });
        expect(after).to.be.at.least(before);
    });
});
