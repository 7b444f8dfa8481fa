//! The files under `deploy/` against the real binary: every metric the Grafana dashboard
//! and the Prometheus alert rules query is one the hub exports, and the command lines of
//! the systemd unit, the Dockerfile and the Kubernetes manifests are accepted by the hub
//! (it starts with them and answers `/healthz`).

mod common;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::Stdio;

use common::{temp_dir, Hub, BIN, WAIT};
use tokio::io::{AsyncBufReadExt, BufReader};

/// A file of the repository, by its path from the root.
fn repo_file(path: &str) -> String {
    let full = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("read {}: {e}", full.display()))
}

/// Series that Prometheus itself adds to every scrape target, not exported by the hub.
const PROMETHEUS_SERIES: &[&str] = &["up"];

/// The metric names a PromQL expression refers to: every `ssehub_…` identifier, and every
/// other identifier written directly before a label selector `{` (which must then be one
/// of Prometheus's own series).
fn metric_names(expr: &str) -> Vec<String> {
    let bytes = expr.as_bytes();
    let is_ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b':';
    let mut names = Vec::new();
    let mut i = 0;
    let mut in_quotes = false;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'"' {
            in_quotes = !in_quotes;
            i += 1;
            continue;
        }
        let starts_word = is_ident(b) && !b.is_ascii_digit() && (i == 0 || !is_ident(bytes[i - 1]));
        if in_quotes || !starts_word {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && is_ident(bytes[i]) {
            i += 1;
        }
        let word = &expr[start..i];
        // `$__rate_interval`, `$job`: Grafana variables.
        if start > 0 && bytes[start - 1] == b'$' {
            continue;
        }
        if word.starts_with("ssehub_") || bytes.get(i) == Some(&b'{') {
            names.push(word.to_owned());
        }
    }
    names
}

/// What a `/metrics` answer declares: the names of its samples and the `# TYPE` of each
/// metric family.
struct Exported {
    samples: HashSet<String>,
    types: HashMap<String, String>,
}

impl Exported {
    fn parse(text: &str) -> Exported {
        let mut samples = HashSet::new();
        let mut types = HashMap::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let mut parts = rest.split_whitespace();
                let (name, kind) = (parts.next().unwrap(), parts.next().unwrap());
                types.insert(name.to_owned(), kind.to_owned());
            } else if !line.starts_with('#') && !line.trim().is_empty() {
                let end = line.find(['{', ' ']).unwrap_or(line.len());
                samples.insert(line[..end].to_owned());
            }
        }
        Exported { samples, types }
    }

    /// Whether `name` is a series of this output: a sample, a declared family (a labelled
    /// family without samples now, such as `ssehub_topic_subscribers` with no subscriber,
    /// declares only its `# TYPE`), or the `_bucket`/`_sum`/`_count` of a histogram or
    /// summary family.
    fn has(&self, name: &str) -> bool {
        if self.samples.contains(name) || self.types.contains_key(name) {
            return true;
        }
        ["_bucket", "_sum", "_count"].iter().any(|suffix| {
            name.strip_suffix(suffix).is_some_and(|family| {
                let kind = self.types.get(family).map(String::as_str);
                match *suffix {
                    "_bucket" => kind == Some("histogram"),
                    _ => matches!(kind, Some("histogram" | "summary")),
                }
            })
        })
    }
}

/// Every string under an `expr`, `query` or `definition` key of the dashboard, anywhere
/// (but the data source variable's, whose query is the data source type).
fn dashboard_queries(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) if map.get("type") == Some(&"datasource".into()) => {}
        serde_json::Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("expr" | "query" | "definition", serde_json::Value::String(s)) => {
                        out.push(s.clone())
                    }
                    _ => dashboard_queries(value, out),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| dashboard_queries(v, out)),
        _ => {}
    }
}

/// The `expr:` of every alert rule (one line each; a block scalar would not be read).
fn alert_exprs(yaml: &str) -> Vec<String> {
    yaml.lines()
        .filter_map(|line| line.trim_start().strip_prefix("expr:"))
        .map(|expr| {
            let expr = expr.trim();
            assert!(
                !expr.starts_with('|') && !expr.starts_with('>'),
                "keep alert expressions on one line: {expr}"
            );
            expr.trim_matches(|c| c == '"' || c == '\'').to_owned()
        })
        .collect()
}

async fn get(url: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(url)
        .timeout(WAIT)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
}

#[tokio::test]
async fn dashboard_and_alerts_query_only_exported_metrics() {
    // `ssehub_bridge_*` series exist only while a bridge is configured. This one points at a
    // port where nothing listens: it retries for the whole test, but its series are the same
    // as a connected bridge's (`up` is 0), and the check needs no service.
    let dir = temp_dir("deploy-metrics");
    let config = dir.join("ssehub.toml");
    std::fs::write(
        &config,
        format!(
            "memory = true\n[[bridge]]\nname = \"dashboard\"\nkind = \"redis-pubsub\"\n\
             url = \"redis://127.0.0.1:{}\"\nchannels = [\"x\"]\n",
            common::free_port()
        ),
    )
    .unwrap();
    let hub = Hub::start(["--config", config.to_str().unwrap()], &[]).await;
    let response = get(&format!("{}/metrics", hub.url)).await;
    assert_eq!(response.status(), 200);
    let exported = Exported::parse(&response.text().await.unwrap());
    assert!(
        exported.samples.contains("ssehub_connections"),
        "parse /metrics"
    );
    assert!(
        exported.samples.contains("ssehub_bridge_up"),
        "the hub started with its bridge"
    );

    let dashboard: serde_json::Value =
        serde_json::from_str(&repo_file("deploy/grafana/ssehub-dashboard.json"))
            .expect("the dashboard is JSON");
    let variables = dashboard["templating"]["list"].as_array().unwrap();
    assert!(
        variables
            .iter()
            .any(|v| v["type"] == "datasource" && v["query"] == "prometheus"),
        "the dashboard has a Prometheus data source variable"
    );
    let mut dashboard_exprs = Vec::new();
    dashboard_queries(&dashboard, &mut dashboard_exprs);
    let alert_exprs = alert_exprs(&repo_file("deploy/prometheus/ssehub-alerts.yml"));
    assert!(dashboard_exprs.len() >= 15, "{dashboard_exprs:?}");
    assert!(alert_exprs.len() >= 5, "{alert_exprs:?}");

    let mut checked = HashSet::new();
    for (file, expr) in dashboard_exprs
        .iter()
        .map(|e| ("ssehub-dashboard.json", e))
        .chain(alert_exprs.iter().map(|e| ("ssehub-alerts.yml", e)))
    {
        let names = metric_names(expr);
        assert!(!names.is_empty(), "{file}: no metric in {expr}");
        for name in names {
            assert!(
                exported.has(&name) || PROMETHEUS_SERIES.contains(&name.as_str()),
                "{file}: {name} (in {expr}) is not in the hub's /metrics"
            );
            checked.insert(name);
        }
    }
    let mention = |exprs: &[String], metric: &str| {
        exprs
            .iter()
            .any(|e| metric_names(e).iter().any(|n| n == metric))
    };
    // The alerts named in docs/deploy.md are there, and those on bridges.
    for metric in [
        "up",
        "ssehub_slow_consumer_drops_total",
        "ssehub_publish_rejected_total",
        "ssehub_connections",
        "ssehub_limit",
        "ssehub_bridge_up",
        "ssehub_bridge_skipped_total",
    ] {
        assert!(mention(&alert_exprs, metric), "no alert on {metric}");
    }
    assert!(checked.len() >= 12, "{checked:?}");
    // The bridge panels: state, messages in, out and skipped, errors, lag.
    for metric in [
        "ssehub_bridge_up",
        "ssehub_bridge_received_total",
        "ssehub_bridge_published_total",
        "ssehub_bridge_skipped_total",
        "ssehub_bridge_errors_total",
        "ssehub_bridge_lag",
    ] {
        assert!(
            mention(&dashboard_exprs, metric),
            "no dashboard panel queries {metric}"
        );
    }
    drop(hub);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn metric_names_of_expressions() {
    assert_eq!(
        metric_names(
            r#"sum by (instance) (rate(ssehub_events_published_total{job=~"$job", x="ssehub_no"}[$__rate_interval]))"#
        ),
        ["ssehub_events_published_total"]
    );
    assert_eq!(
        metric_names(
            r#"ssehub_connections / ignoring(name) ssehub_limit{name="max_connections"} > 0.9"#
        ),
        ["ssehub_connections", "ssehub_limit"]
    );
    assert_eq!(metric_names(r#"up{job="ssehub"} == 0"#), ["up"]);
    let exported = Exported::parse(
        "# TYPE a_seconds histogram\na_seconds_bucket{le=\"1\"} 1\n# TYPE b summary\n# TYPE c counter\nc 1\n",
    );
    assert!(exported.has("a_seconds_bucket") && exported.has("a_seconds_count"));
    assert!(exported.has("b_sum") && !exported.has("b_bucket"));
    assert!(exported.has("c") && !exported.has("c_count") && !exported.has("d"));
}

/// Starts the binary with `args` (its own first argument excluded) and `env`, and waits for
/// its `listening on` line.
async fn start_with(args: &[String], env: &[(String, String)]) -> Hub {
    let mut command = tokio::process::Command::new(BIN);
    command
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env_remove("MERCURE_PUBLISHER_JWT_KEY")
        .env_remove("MERCURE_SUBSCRIBER_JWT_KEY")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    let mut child = command
        .spawn()
        .unwrap_or_else(|e| panic!("start {args:?}: {e}"));
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(WAIT, lines.next_line())
        .await
        .unwrap_or_else(|_| panic!("{args:?}: the hub did not say where it listens"))
        .unwrap()
        .unwrap_or_else(|| panic!("{args:?}: the hub exited before listening"));
    Hub {
        child,
        url: common::listening_url(&line),
    }
}

/// A deployed command line made runnable here: `--listen ADDR` (or `--listen=ADDR`) on an
/// ephemeral loopback port, and the deployed data directory replaced by `data_dir`.
fn localize(args: &[String], deployed_dir: &str, data_dir: &Path) -> Vec<String> {
    let dir = data_dir.to_str().unwrap().to_owned();
    let mut out = Vec::new();
    let mut listen_seen = false;
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        if arg == "--listen" {
            iter.next().expect("--listen has a value");
            out.extend(["--listen".to_owned(), "127.0.0.1:0".to_owned()]);
            listen_seen = true;
        } else if arg.starts_with("--listen=") {
            out.push("--listen=127.0.0.1:0".to_owned());
            listen_seen = true;
        } else if arg == deployed_dir {
            out.push(dir.clone());
        } else if arg.strip_prefix("--data-dir=") == Some(deployed_dir) {
            out.push(format!("--data-dir={dir}"));
        } else {
            out.push(arg.clone());
        }
    }
    assert!(listen_seen, "{args:?} sets no --listen");
    out
}

/// Starts the hub with a deployed command line (see [`localize`]), checks `/healthz`
/// answers 200 `{"status":"ok"}` and that the durable log was opened in the data
/// directory given.
async fn check_starts(what: &str, args: &[String], deployed_dir: &str, env: &[(String, String)]) {
    let data_dir = temp_dir("deploy");
    let args = localize(args, deployed_dir, &data_dir);
    let hub = start_with(&args, env).await;
    let response = get(&format!("{}/healthz", hub.url)).await;
    assert_eq!(response.status(), 200, "{what}: /healthz");
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["status"], "ok", "{what}: /healthz");
    assert!(
        data_dir.join("lock").exists(),
        "{what}: no log opened in the data directory {}",
        data_dir.display()
    );
    drop(hub);
    let _ = std::fs::remove_dir_all(&data_dir);
}

/// The systemd unit's `KEY=VALUE` lines for `key`.
fn unit_values<'a>(unit: &'a str, key: &str) -> Vec<&'a str> {
    unit.lines()
        .filter_map(|line| line.trim().strip_prefix(key)?.strip_prefix('='))
        .collect()
}

#[tokio::test]
async fn systemd_unit_exec_start_serves() {
    let unit = repo_file("deploy/ssehub.service");
    let exec = unit_values(&unit, "ExecStart");
    assert_eq!(exec.len(), 1, "one ExecStart line");
    assert!(!exec[0].ends_with('\\'), "keep ExecStart on one line");
    let words: Vec<String> = exec[0].split_whitespace().map(str::to_owned).collect();
    assert!(
        words[0].starts_with('/') && words[0].ends_with("/ssehub"),
        "ExecStart runs the binary by absolute path: {}",
        words[0]
    );
    assert_eq!(unit_values(&unit, "StateDirectory"), ["ssehub"]);
    assert!(
        words
            .windows(2)
            .any(|w| w == ["--data-dir", "/var/lib/ssehub"]),
        "the data directory is the StateDirectory: {words:?}"
    );
    for key in ["NoNewPrivileges", "ProtectSystem", "Restart", "LimitNOFILE"] {
        assert_eq!(unit_values(&unit, key).len(), 1, "{key}");
    }
    let env: Vec<(String, String)> = unit_values(&unit, "Environment")
        .iter()
        .map(|kv| {
            let (k, v) = kv.split_once('=').expect("Environment=KEY=VALUE");
            (k.to_owned(), v.to_owned())
        })
        .collect();
    check_starts("ssehub.service", &words[1..], "/var/lib/ssehub", &env).await;
}

/// The JSON array of the Dockerfile instruction `name` (exec form).
fn dockerfile_array(dockerfile: &str, name: &str) -> Vec<String> {
    let lines: Vec<&str> = dockerfile
        .lines()
        .filter_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .collect();
    assert_eq!(lines.len(), 1, "one {name} in the Dockerfile");
    serde_json::from_str(lines[0].trim())
        .unwrap_or_else(|e| panic!("{name} in exec form (a JSON array): {e}"))
}

#[tokio::test]
async fn dockerfile_command_serves() {
    let dockerfile = repo_file("deploy/Dockerfile");
    let entrypoint = dockerfile_array(&dockerfile, "ENTRYPOINT");
    let cmd = dockerfile_array(&dockerfile, "CMD");
    assert_eq!(
        entrypoint.len(),
        1,
        "ENTRYPOINT is the binary: {entrypoint:?}"
    );
    assert!(entrypoint[0].ends_with("/ssehub"), "{entrypoint:?}");
    assert!(
        dockerfile.contains(&format!("COPY --from=builder {} ", entrypoint[0])),
        "the ENTRYPOINT is the binary copied from the builder"
    );
    assert_eq!(dockerfile_array(&dockerfile, "VOLUME"), ["/data"]);
    assert!(
        cmd.windows(2).any(|w| w == ["--data-dir", "/data"]),
        "CMD uses the volume: {cmd:?}"
    );
    assert!(
        cmd.windows(2).any(|w| w == ["--listen", "0.0.0.0:8080"]),
        "CMD listens on all addresses, port 8080: {cmd:?}"
    );
    assert!(dockerfile.contains("EXPOSE 8080"));
    assert!(
        dockerfile.contains("http://127.0.0.1:8080/healthz"),
        "HEALTHCHECK asks /healthz on the port CMD listens on"
    );
    check_starts("Dockerfile CMD", &cmd, "/data", &[]).await;
}

/// The `args:` flow arrays of a manifest, and whether every probe asks `/healthz`.
fn manifest_args(yaml: &str) -> Vec<Vec<String>> {
    let probes = yaml
        .lines()
        .filter(|l| l.trim_end().ends_with("Probe:"))
        .count();
    let paths: Vec<&str> = yaml
        .lines()
        .filter_map(|l| l.trim().strip_prefix("path:"))
        .map(str::trim)
        .collect();
    assert!(probes >= 2, "readiness and liveness probes");
    assert!(
        paths.len() >= probes && paths.iter().all(|p| *p == "/healthz" || *p == "/metrics"),
        "{paths:?}"
    );
    yaml.lines()
        .filter_map(|l| l.trim().strip_prefix("args:"))
        .map(|a| serde_json::from_str(a.trim()).expect("args: as a JSON flow array"))
        .collect()
}

#[tokio::test]
async fn kubernetes_args_are_accepted() {
    let single = manifest_args(&repo_file("deploy/k8s/single-node.yaml"));
    assert_eq!(single.len(), 1);
    assert!(single[0].windows(2).any(|w| w == ["--data-dir", "/data"]));
    check_starts("k8s/single-node.yaml", &single[0], "/data", &[]).await;

    // The cluster nodes need Redis to serve; `print-config` with the same flags checks
    // that the hub accepts them (it builds the configuration without connecting).
    let cluster = manifest_args(&repo_file("deploy/k8s/cluster.yaml"));
    assert_eq!(cluster.len(), 1);
    let args: Vec<String> = cluster[0]
        .iter()
        .map(|a| a.replace("$(SSEHUB_REDIS_URL)", "redis://127.0.0.1:6379/"))
        .collect();
    assert_eq!(args[0], "serve");
    assert!(args.iter().any(|a| a == "--redis-url"), "{args:?}");
    let output = std::process::Command::new(BIN)
        .arg("print-config")
        .args(&args[1..])
        .env_remove("SSEHUB_REDIS_URL")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "k8s/cluster.yaml args {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}
