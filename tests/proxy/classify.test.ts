import { expect } from "chai";
import { Cause, Profile } from "../../catalog/datamodel";
import { AnswerMarks, classify, connectFault, proxyStatusError, responseFault } from "../../proxy/gateway/classify";
import { validateGatewayConfig } from "../../proxy/gateway/config";
import { DestinationPolicy } from "../../proxy/gateway/destinations";

describe("the gateway's fault classifier", () => {
    it("charges CONNECT answers: 2xx none; 401/407/429/5xx vendor; 403 and destination-unreachable marks destination", () => {
        expect(connectFault(200)).to.equal("none");
        for (const s of [401, 407, 429, 502, 503, 504]) expect(connectFault(s), String(s)).to.equal("vendor");
        expect(connectFault(403)).to.equal("destination");
        expect(connectFault(404)).to.equal("destination");
        expect(connectFault(502, { proxyStatus: 'vendor; error=dns_error; details="x"' })).to.equal("destination");
        expect(connectFault(502, { proxyStatus: "vendor; error=proxy_internal_error" })).to.equal("vendor");
        expect(connectFault(503, { squidError: "ERR_CONNECT_FAIL 111" })).to.equal("destination");
        expect(connectFault(503, { squidError: "ERR_CANNOT_FORWARD 0" })).to.equal("vendor");
        expect(connectFault(500, { reasonPhrase: "Unable to connect" })).to.equal("destination");
    });

    it("charges plain-HTTP responses: a destination's 5xx is the destination's, the vendor's own marked errors and 407 the vendor's", () => {
        expect(responseFault(200)).to.equal("none");
        expect(responseFault(404)).to.equal("none");
        expect(responseFault(503)).to.equal("destination");
        expect(responseFault(407)).to.equal("vendor");
        expect(responseFault(502, { proxyStatus: "sim; error=proxy_internal_error" })).to.equal("vendor");
        expect(responseFault(429, { proxyStatus: "sim; error=proxy_internal_error" })).to.equal("vendor");
        expect(responseFault(502, { proxyStatus: "sim; error=connection_refused" })).to.equal("destination");
        expect(proxyStatusError('a; error="dns_timeout", b; error=http_request_denied')).to.equal(
            "http_request_denied",
        );
    });
});

describe("the destination policy defaults", () => {
    const policy = new DestinationPolicy(
        validateGatewayConfig({
            vendor: "v",
            pools: [{ name: "p", host: "h", port: 1, usernameFile: "u", passwordFile: "p" }],
        }).destinations,
    );

    it("forwards a request line rebuilt from the parsed URL", () => {
        expect(policy.httpTarget("http://Example.COM/a/../b?q=1")).to.deep.include({
            host: "example.com",
            port: 80,
            url: "http://example.com/b?q=1",
        });
        expect(policy.httpTarget("http://example.com?x=@y")).to.equal("ambiguous-url");
        // What WHATWG parsing re-encodes is re-encoded (the fast path for plain paths must agree with it).
        expect(policy.httpTarget("http://example.com/a b/./c?q='x'")).to.deep.include({
            url: "http://example.com/a%20b/c?q=%27x%27",
        });
        expect(policy.httpTarget("http://example.com/bytes/100?a=1&b=2")).to.deep.include({
            url: "http://example.com/bytes/100?a=1&b=2",
        });
        expect(policy.httpTarget("http://example.com:443")).to.deep.include({ url: "http://example.com:443/" });
    });

    it("listens on loopback unless told (the pods set 0.0.0.0)", () => {
        const cfg = validateGatewayConfig({
            vendor: "v",
            pools: [{ name: "p", host: "h", port: 1, usernameFile: "u", passwordFile: "p" }],
        });
        expect(cfg.listen.host).to.equal("127.0.0.1");
        expect(cfg.crawlerAuthFile).to.equal(undefined);
    });

    it("refuses other ports, internal addresses and names, and non-canonical hosts", () => {
        expect(policy.connectTarget("example.com:22")).to.equal("port-not-allowed");
        expect(policy.connectTarget("10.0.0.1:443")).to.equal("internal-address");
        expect(policy.connectTarget("[::ffff:a00:1]:443")).to.equal("internal-address");
        expect(policy.connectTarget("redis:443")).to.equal("internal-name");
        expect(policy.connectTarget("017700000001:443")).to.equal("non-canonical-host");
        expect(policy.connectTarget("example.com:443")).to.deep.include({ authority: "example.com:443" });
    });

    it("rejects malformed connectPorts and health settings naming the key", () => {
        expect(() =>
            validateGatewayConfig({
                vendor: "v",
                pools: [{ name: "p", host: "h", port: 1, usernameFile: "u", passwordFile: "p" }],
                destinations: { connectPorts: [443, "9-1"] },
                health: { ejectionMs: 60_000, maxEjectionMs: 1000 },
            }),
        ).to.throw(
            /destinations\.connectPorts\[1\]: expected a port or a range[^]*health\.maxEjectionMs: expected at least/,
        );
    });
});

describe("classify: each vendor profile's reading of its own marks", () => {
    const cases: [Profile, "connect" | "response", number, AnswerMarks, Cause][] = [
        // Bright Data: the err-code prefix names the layer; since 2025 also RFC 9209 with the code in `details`.
        ["brightdata", "connect", 502, { vendor: { "x-brd-err-code": "peer_30006" } }, "vendor_error"],
        ["brightdata", "connect", 502, { vendor: { "x-brd-err-code": "target_40001" } }, "destination"],
        ["brightdata", "connect", 403, { vendor: { "x-brd-err-code": "policy_20050" } }, "vendor_policy"],
        ["brightdata", "connect", 407, { vendor: { "x-brd-err-code": "client_10000" } }, "client"],
        ["brightdata", "connect", 502, { vendor: { "x-luminati-error": "No peers available" } }, "session_lost"],
        [
            "brightdata",
            "connect",
            400,
            {
                proxyStatus:
                    'brd.superproxy.io; received-status=400; error=destination_ip_unroutable; details="client-10060: IP not in zone"',
            },
            "client",
        ],
        // Oxylabs: X-Error-Description only on its own errors; 522 is the target's, 525 (no exit) its own.
        ["oxylabs", "connect", 522, {}, "destination"],
        ["oxylabs", "connect", 525, {}, "vendor_error"],
        ["oxylabs", "connect", 502, { vendor: { "x-error-description": "Internal error" } }, "vendor_error"],
        [
            "oxylabs",
            "connect",
            502,
            { vendor: { "x-error-description": "Exit node not found (session ended)" } },
            "session_lost",
        ],
        ["oxylabs", "response", 503, {}, "destination"],
        ["oxylabs", "response", 404, {}, "none"],
        // Zyte Smart Proxy Manager and Zyte API.
        ["zyte", "connect", 503, { vendor: { "x-crawlera-error": "banned" } }, "destination"],
        ["zyte", "connect", 503, { vendor: { "x-crawlera-error": "noslaves" } }, "vendor_error"],
        ["zyte", "connect", 503, { vendor: { "x-crawlera-error": "serverbusy" } }, "vendor_error"],
        ["zyte", "connect", 429, { vendor: { "x-crawlera-error": "too_many_conns" } }, "client"],
        ["zyte", "response", 403, { vendor: { "x-crawlera-error": "domain_forbidden" } }, "vendor_policy"],
        ["zyte", "response", 520, { vendor: { "zyte-error-type": "/download/temporary-error" } }, "vendor_error"],
        ["zyte", "response", 521, { vendor: { "zyte-error-type": "/website/dns-error" } }, "destination"],
        // SOAX by keyword; RFC 9209 by error type.
        ["soax", "connect", 502, { vendor: { "x-soax-error": "session_expired" } }, "session_lost"],
        ["rfc9209", "connect", 403, { proxyStatus: "v; error=http_request_denied" }, "vendor_policy"],
        ["rfc9209", "connect", 502, { proxyStatus: "v; error=dns_error" }, "destination"],
        // Unmarked plain-HTTP answers are the destination's for every profile: its 429 is not our account's.
        ["brightdata", "response", 429, {}, "none"],
        ["soax", "response", 502, {}, "destination"],
        // A vendor's mark on a success is ignored.
        ["brightdata", "connect", 200, { vendor: { "x-brd-err-code": "peer_30006" } }, "none"],
    ];
    for (const [profile, kind, status, marks, cause] of cases) {
        it(`${profile} ${kind} ${status} ${JSON.stringify(marks)}: ${cause}`, () => {
            expect(classify(profile, kind, status, marks)).to.equal(cause);
        });
    }
});
