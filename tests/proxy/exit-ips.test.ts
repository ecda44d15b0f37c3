import { expect } from "chai";
import { EXIT_IP_DEFAULTS } from "../../proxy/gateway/config";
import {
    ExitIpTracker,
    HyperLogLog,
    PoolExitIps,
    SKETCH_STANDARD_ERROR,
    StickySessions,
    WindowedSketch,
} from "../../proxy/gateway/exit-ips";

/** The i-th of a run of distinct IPv4 addresses, offset so that runs with different seeds do not overlap. */
function ip(i: number, seed = 0): string {
    const n = (i + seed * 16_777_216) >>> 0;
    return `${(n >>> 24) & 255}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

describe("the exit-IP sketch (HyperLogLog, 4096 registers)", () => {
    const bound = 3 * SKETCH_STANDARD_ERROR; // 3 sigma: 4.9 %

    for (const n of [10, 10_000, 1_000_000]) {
        it(`estimates ${n.toLocaleString("en")} distinct addresses within ${(bound * 100).toFixed(1)} %, memory flat`, () => {
            for (const seed of n === 1_000_000 ? [1] : [1, 2, 3]) {
                const s = new HyperLogLog();
                const bytes = s.registers.byteLength;
                for (let i = 0; i < n; i++) s.add(ip(i, seed));
                // Adding every address again changes nothing: a set, not a count.
                if (n <= 10_000) for (let i = 0; i < n; i++) s.add(ip(i, seed));
                const e = s.estimate();
                expect(Math.abs(e - n) / n, `seed ${seed}: estimate ${e} of ${n}`).to.be.at.most(bound);
                expect(s.registers.byteLength).to.equal(bytes);
                expect(bytes).to.equal(4096);
            }
        });
    }

    it("merges two sketches into their union", () => {
        const a = new HyperLogLog();
        const b = new HyperLogLog();
        for (let i = 0; i < 20_000; i++) a.add(ip(i));
        for (let i = 10_000; i < 30_000; i++) b.add(ip(i));
        a.merge(b);
        expect(Math.abs(a.estimate() - 30_000) / 30_000).to.be.at.most(bound);
    });
});

describe("the sliding windows", () => {
    it("forget buckets older than the window and keep the ones inside", () => {
        const w = new WindowedSketch(60_000, 5);
        const t0 = 1_000_000_000_000 - (1_000_000_000_000 % 60_000);
        for (let i = 0; i < 100; i++) w.add(ip(i), t0);
        for (let i = 100; i < 150; i++) w.add(ip(i), t0 + 4 * 60_000);
        expect(w.read(t0 + 4 * 60_000)).to.deep.equal({ distinct: 150, samples: 150 });
        // One minute later the first bucket has aged out.
        expect(w.read(t0 + 5 * 60_000)).to.deep.equal({ distinct: 50, samples: 50 });
        expect(w.read(t0 + 60 * 60_000)).to.deep.equal({ distinct: 0, samples: 0 });
        expect(w.bytes).to.equal(5 * 4096);
    });

    it("report distinct, samples and reuse per window with 164 KiB per pool", () => {
        const p = new PoolExitIps();
        const now = 1_700_000_000_000;
        for (let i = 0; i < 1000; i++) p.add(ip(i % 5), now);
        const r = p.read(now);
        expect(r.map((x) => x.window)).to.deep.equal(["5m", "1h", "24h"]);
        for (const x of r) {
            expect(x.distinct).to.equal(5);
            expect(x.samples).to.equal(1000);
            expect(x.reuse).to.be.closeTo(0.995, 1e-9);
        }
        expect(p.bytes).to.equal(164 * 1024);
    });
});

describe("sticky sessions", () => {
    it("count a break when a session's exit address changes, and remember a bounded number of sessions", () => {
        const s = new StickySessions(3);
        expect(s.see("a", "1.1.1.1")).to.equal(false);
        expect(s.see("a", "1.1.1.1")).to.equal(false);
        expect(s.see("a", "2.2.2.2")).to.equal(true);
        for (const k of ["b", "c", "d", "e"]) s.see(k, "9.9.9.9");
        expect(s.size).to.equal(3);
    });
});

describe("the exit-IP tracker's sticky sessions in usernames", () => {
    const b64 = (s: string) => "Basic " + Buffer.from(s).toString("base64");
    const t = new ExitIpTracker(
        {
            ...EXIT_IP_DEFAULTS,
            header: "x-exit-ip",
            sessionPattern: "^(?<user>.+)-session-(?<session>[a-z0-9]+)$",
        },
        ["p1"],
    );

    it("reads the session from the crawler's username and compares crawler credentials without it", () => {
        expect(t.session(b64("ns-a-session-42:pw"))).to.equal("42");
        expect(t.session(b64("ns-a:pw"))).to.equal(undefined);
        expect(t.session(undefined)).to.equal(undefined);
        expect(t.withoutSession(b64("ns-a-session-42:pw:with:colons"))).to.equal(b64("ns-a:pw:with:colons"));
        expect(t.withoutSession(b64("ns-a:pw"))).to.equal(b64("ns-a:pw"));
    });

    it("passes the session to the pool in its username, keeping the pool's password", () => {
        expect(t.authorization(b64("cust:p:w"), "42")).to.equal(b64("cust-session-42:p:w"));
        expect(t.authorization(b64("cust:pw"), undefined)).to.equal(b64("cust:pw"));
    });
});
