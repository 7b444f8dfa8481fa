//! The readable one-screen summary of a JSON report.

use serde_json::Value;

fn f(v: &Value, digits: usize) -> String {
    match v.as_f64() {
        Some(x) => format!("{x:.digits$}"),
        None => "-".into(),
    }
}

fn lat(v: &Value) -> String {
    format!(
        "p50 {} ms, p90 {} ms, p99 {} ms, max {} ms",
        f(&v["p50_ms"], 2),
        f(&v["p90_ms"], 2),
        f(&v["p99_ms"], 2),
        f(&v["max_ms"], 2)
    )
}

/// A few lines a person reads after a run.
pub fn summary(v: &Value) -> String {
    let mut s = format!(
        "== {} / {} ({} s)\n",
        v["label"].as_str().unwrap_or("?"),
        v["mode"].as_str().unwrap_or("?"),
        f(&v["duration_s"], 1)
    );
    match v["mode"].as_str().unwrap_or("") {
        "idle" => {
            let c = &v["connections"];
            let h = &v["hub"];
            s += &format!(
                "connections: {} requested, {} live, {} failed, {} held at end (connect {} s)\n",
                c["requested"],
                c["live_after_connect"],
                c["failed"],
                c["held_at_end"],
                f(&c["connect_s"], 1)
            );
            s += &format!(
                "hub: RSS {} -> {} KiB, {} KiB/conn (PSS {} KiB/conn), CPU connect {} s, hold {} s\n",
                h["before"]["rss_kib"], h["after_hold"]["rss_kib"], f(&h["rss_per_conn_kib"], 2),
                f(&h["pss_per_conn_kib"], 2), f(&h["cpu_s_connect"], 2), f(&h["cpu_s_hold"], 2)
            );
            if c["errors"].as_object().is_some_and(|o| !o.is_empty()) {
                s += &format!("errors: {}\n", c["errors"]);
            }
        }
        "fanout" | "publish" => {
            let p = &v["publish"];
            s += &format!(
                "publish: {} ok of {}, {} /s achieved (target {}), request {}\n",
                p["ok"],
                p["wanted"],
                f(&p["achieved_rate"], 1),
                f(&p["target_rate"], 0),
                lat(&p["request_latency"])
            );
            if p["errors"].as_object().is_some_and(|o| !o.is_empty()) {
                s += &format!("publish errors: {}\n", p["errors"]);
            }
            if !v["delivery"].is_null() {
                let c = &v["connections"];
                let d = &v["delivery"];
                s += &format!(
                    "subscribers: {} requested, {} live, {} failed\n",
                    c["requested"], c["live"], c["failed"]
                );
                s += &format!(
                    "delivery: {} / {} ({:.4} %), dups {}, reordered {}, {} deliveries/s\n",
                    d["received"],
                    d["expected"],
                    d["completeness"].as_f64().unwrap_or(0.0) * 100.0,
                    d["dups"],
                    d["reordered"],
                    f(&d["deliveries_per_s"], 0)
                );
                s += &format!("latency publish->receive: {}\n", lat(&d["latency"]));
            }
            let h = &v["hub"];
            s += &format!(
                "hub: {} CPU-s ({} cores), {} CPU-s per 1M deliveries, {} per 1M publishes, RSS {} KiB\n",
                f(&h["cpu_s"], 2), f(&h["cores"], 2), f(&h["cpu_s_per_million_deliveries"], 2),
                f(&h["cpu_s_per_million_publishes"], 2), h["at_end"]["rss_kib"]
            );
            let g = &v["generator"];
            s += &format!(
                "generator: {} CPU-s ({} cores); whole machine busy {} cores\n",
                f(&g["cpu_s"], 2),
                f(&g["cores"], 2),
                f(&v["box_busy_cores"], 2)
            );
        }
        "replay" => {
            let r = &v["replay"];
            s += &format!(
                "preload: {} events at {} /s; resume from {}\n",
                v["publish"]["ok"],
                f(&v["publish"]["achieved_rate"], 0),
                v["resume_from_id"]
            );
            s += &format!(
                "replay: {} replayer(s), {} / {} received, complete {}, first event {} s, all {} s, {} events/s, dups {}\n",
                r["replayers"], r["received"], r["expected"], r["complete"], f(&r["first_event_s"], 3),
                f(&r["all_received_s"], 3), f(&r["events_per_s"], 0), r["dups"]
            );
            s += &format!(
                "hub: history RSS {} KiB, replay CPU {} s\n",
                v["hub"]["history_rss_kib"],
                f(&v["hub"]["cpu_s_replay"], 2)
            );
        }
        "storm" => {
            let r = &v["reconnect"];
            s += &format!(
                "clients: {} ({} live initially)\n",
                v["clients"], v["initial"]["live"]
            );
            s += &format!(
                "reconnect: {} live, {} failed, all live after {} s, caught up {} ({} s), missing {}, dups {}\n",
                r["live"], r["failed"], f(&r["all_live_s"], 3), r["caught_up"], f(&r["caught_up_s"], 3), r["missing"], r["dups"]
            );
            if r["errors"].as_object().is_some_and(|o| !o.is_empty()) {
                s += &format!("errors: {}\n", r["errors"]);
            }
            s += &format!("hub: storm CPU {} s\n", f(&v["hub"]["cpu_s_storm"], 2));
        }
        _ => {}
    }
    s
}
