/**
 * Sticky sessions keyed on what the crawler sends, never its source IP (behind a Kubernetes Service the source is
 * NAT's choice): the `X-Proxy-Monitor-Session` header, or a `-session-<key>` suffix on the crawler's proxy username
 * (`crawlers-session-abc:secret`, as vendors spell sessions). One key keeps one pool (Pools.pickFor), and where the
 * vendor encodes sessions in its username the key is passed on in the pool's username, in the vendor's spelling.
 */
import * as http from "http";
import { Profile } from "../../catalog/datamodel";
import { SESSION_HEADER } from "../../catalog/gateway";

/** Session keys: what every vendor accepts in a username. */
export const SESSION_KEY = /^[A-Za-z0-9_]{1,64}$/;
const USERNAME_SESSION = /-session-([^:]*)$/;

export interface CrawlerSession {
    /** The session key, if the crawler sent one (undefined: no session; "" never). */
    readonly key?: string;
    /** The crawler's Proxy-Authorization without the session suffix (what crawler authentication checks). */
    readonly authorization?: string;
    /** The crawler sent a session key that is not SESSION_KEY. */
    readonly invalid?: boolean;
}

/** The crawler's session key and its credentials without it. */
export function crawlerSession(req: { readonly headers: http.IncomingHttpHeaders }): CrawlerSession {
    const auth = req.headers["proxy-authorization"];
    const header = req.headers[SESSION_HEADER];
    let key = typeof header === "string" ? header.trim() : undefined;
    let authorization = typeof auth === "string" ? auth : undefined;
    if (authorization?.startsWith("Basic ")) {
        const plain = Buffer.from(authorization.slice(6), "base64").toString("utf8");
        const colon = plain.indexOf(":");
        const user = colon < 0 ? plain : plain.slice(0, colon);
        const m = USERNAME_SESSION.exec(user);
        if (m) {
            key ??= m[1];
            const bare = user.slice(0, m.index) + (colon < 0 ? "" : plain.slice(colon));
            authorization = "Basic " + Buffer.from(bare).toString("base64");
        }
    }
    if (key === undefined) return { authorization };
    if (!SESSION_KEY.test(key)) return { authorization, invalid: true };
    return { key, authorization };
}

/** How each vendor spells a sticky session in its username (none: the pool alone is sticky). */
const USERNAME_SUFFIX: Readonly<Record<Profile, ((key: string) => string) | undefined>> = {
    brightdata: (k) => `-session-${k}`,
    oxylabs: (k) => `-sessid-${k}`,
    soax: (k) => `-sessionid-${k}`,
    rfc9209: undefined,
    zyte: undefined,
    generic: undefined,
};

/** The profile spells sessions in the pool's username. */
export function profileSpellsSessions(profile: Profile): boolean {
    return USERNAME_SUFFIX[profile] !== undefined;
}

/** The pool's Proxy-Authorization carrying the session key in the vendor's spelling. */
export function sessionAuthorization(profile: Profile, poolAuthorization: string, key: string | undefined): string {
    const suffix = key === undefined ? undefined : USERNAME_SUFFIX[profile];
    if (!suffix || !poolAuthorization.startsWith("Basic ")) return poolAuthorization;
    const plain = Buffer.from(poolAuthorization.slice(6), "base64").toString("utf8");
    const colon = plain.indexOf(":");
    const user = colon < 0 ? plain : plain.slice(0, colon);
    const rest = colon < 0 ? "" : plain.slice(colon);
    return "Basic " + Buffer.from(`${user}${suffix(key!)}${rest}`).toString("base64");
}
