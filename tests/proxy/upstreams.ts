/**
 * Real third-party upstream pools for the gateway tests: Debian's tinyproxy and squid, each in the foreground on a
 * free loopback port with a generated minimal config requiring CREDS. Both fail clearly when the package is missing.
 */
import { ChildProcess, execFileSync, spawn, spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { waitListening } from "../../scripts/loopback";
import { CREDS, HOST, freePort } from "./helpers";

export interface Upstream {
    readonly proc: ChildProcess;
    readonly port: number;
    /** Kills the process and waits for it to exit (bounded). */
    stop(): Promise<void>;
}

function stopper(proc: ChildProcess, dir: string): () => Promise<void> {
    return async () => {
        if (proc.exitCode === null && proc.signalCode === null) {
            const exited = new Promise((r) => proc.once("exit", r));
            proc.kill("SIGKILL");
            await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
        }
        fs.rmSync(dir, { recursive: true, force: true });
    };
}

function need(bin: string, args: string[]): void {
    if (spawnSync(bin, args).error) {
        throw new Error(`${bin} is not installed: apt-get install -y ${bin} (.ci/run installs it)`);
    }
}

/** tinyproxy 1.11 requiring CREDS. */
export async function startTinyproxy(): Promise<Upstream> {
    need("tinyproxy", ["-v"]);
    const port = await freePort();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tinyproxy-"));
    const conf = path.join(dir, "tinyproxy.conf");
    fs.writeFileSync(
        conf,
        [
            `Port ${port}`,
            `Listen ${HOST}`,
            "Timeout 30",
            "MaxClients 512",
            `BasicAuth ${CREDS.username} ${CREDS.password}`,
            `Allow ${HOST}`,
            "LogLevel Critical",
            "",
        ].join("\n"),
    );
    const proc = spawn("tinyproxy", ["-d", "-c", conf], { stdio: "ignore" });
    await waitListening(port, 5000);
    return { proc, port, stop: stopper(proc, dir) };
}

/**
 * squid 5 as a non-daemon (-N) requiring CREDS through basic_ncsa_auth, no cache, no logs but its cache.log in the
 * temporary directory. When run as root, squid switches to the `proxy` user, so the directory is readable by it.
 */
export async function startSquid(): Promise<Upstream> {
    need("squid", ["-v"]);
    const helper = ["/usr/lib/squid/basic_ncsa_auth", "/usr/lib64/squid/basic_ncsa_auth"].find((f) => fs.existsSync(f));
    if (!helper) throw new Error("squid's basic_ncsa_auth helper is missing: apt-get install -y squid");
    const port = await freePort();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "squid-"));
    fs.chmodSync(dir, 0o777);
    const hash = execFileSync("openssl", ["passwd", "-1", CREDS.password], { encoding: "utf8" }).trim();
    const passwd = path.join(dir, "passwd");
    fs.writeFileSync(passwd, `${CREDS.username}:${hash}\n`, { mode: 0o644 });
    const conf = path.join(dir, "squid.conf");
    fs.writeFileSync(
        conf,
        [
            `http_port ${HOST}:${port}`,
            `pid_filename ${dir}/squid.pid`,
            `cache_log ${dir}/cache.log`,
            "access_log none",
            "cache deny all",
            "cache_mem 8 MB",
            `coredump_dir ${dir}`,
            "pinger_enable off",
            "shutdown_lifetime 0 seconds",
            "dns_nameservers 127.0.0.1",
            `auth_param basic program ${helper} ${passwd}`,
            "auth_param basic children 2 startup=1 idle=1",
            "acl authed proxy_auth REQUIRED",
            "http_access allow authed",
            "http_access deny all",
            "",
        ].join("\n"),
        { mode: 0o644 },
    );
    const proc = spawn("squid", ["-N", "-f", conf], { stdio: "ignore" });
    await waitListening(port, 15_000);
    return { proc, port, stop: stopper(proc, dir) };
}
