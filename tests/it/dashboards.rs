//! The operator files under `docker/` hold together, since Docker does not run here: the
//! Grafana dashboard and the Prometheus rules parse, name only metrics hookrelay exports (and
//! chart every one), and point at each other and at the services the way compose.yaml wires
//! them; the compose config is a valid hookrelay config; the image's build context holds
//! everything the build reads.
//!
//! The YAML files are checked with a line-based reader of the small subset they use (no YAML
//! parser among the dependencies). When `promtool` is installed, the rules also run their unit
//! tests (docker/prometheus/alerts.test.yml).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use hookrelay::config::Config;
use hookrelay::telemetry::metrics::METRIC_NAMES;

fn docker_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("docker")
}

fn read(relative: &str) -> String {
    let path = docker_dir().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn dashboard() -> serde_json::Value {
    serde_json::from_str(&read("grafana/dashboards/hookrelay.json")).expect("the dashboard is JSON")
}

/// Every `hookrelay_…` metric name in `text`, with histogram series (`_bucket`, `_sum`,
/// `_count`) kept as written.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let bytes = text.as_bytes();
    let mut from = 0;
    while let Some(at) = text[from..].find("hookrelay_") {
        let start = from + at;
        let starts_word = start == 0 || {
            let b = bytes[start - 1];
            !(b.is_ascii_alphanumeric() || b == b'_')
        };
        let end = start
            + text[start..]
                .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
                .unwrap_or(text.len() - start);
        if starts_word {
            names.insert(text[start..end].to_owned());
        }
        from = end.max(start + 1);
    }
    names
}

/// The exported metric a series name belongs to, if any.
fn exported(series: &str) -> Option<&'static str> {
    let candidates = [
        Some(series),
        series.strip_suffix("_bucket"),
        series.strip_suffix("_sum"),
        series.strip_suffix("_count"),
    ];
    candidates
        .into_iter()
        .flatten()
        .find_map(|name| METRIC_NAMES.iter().copied().find(|m| *m == name))
}

/// The value of the first `key: value` line (any indentation), quotes removed.
fn yaml_value(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let rest = line.trim_start().trim_start_matches("- ");
        let value = rest.strip_prefix(key)?.strip_prefix(':')?;
        Some(value.trim().trim_matches('"').trim_matches('\'').to_owned())
    })
}

/// One alerting rule as read from alerts.yml.
#[derive(Debug, Default)]
struct Rule {
    name: String,
    expr: String,
    for_: Option<String>,
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
}

/// Reads the rules of a Prometheus rule file of the shape alerts.yml has: `- alert:` items
/// with `expr` (inline or a `|` block), `for`, and `labels`/`annotations` maps whose values
/// are inline or `>-` blocks.
fn alert_rules(text: &str) -> Vec<Rule> {
    let indent = |l: &str| l.len() - l.trim_start().len();
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .collect();
    let mut rules = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let Some(name) = lines[i].trim_start().strip_prefix("- alert:") else {
            i += 1;
            continue;
        };
        let item_indent = indent(lines[i]) + 2;
        let mut rule = Rule {
            name: name.trim().to_owned(),
            ..Rule::default()
        };
        i += 1;
        let mut section: Option<&str> = None;
        while i < lines.len() && (lines[i].trim().is_empty() || indent(lines[i]) >= item_indent) {
            let line = lines[i];
            i += 1;
            if line.trim().is_empty() {
                continue;
            }
            let Some((key, value)) = line.trim().split_once(':') else {
                continue;
            };
            let value = value.trim();
            // A block scalar: the more-indented lines that follow.
            let value = if value == "|" || value == ">-" || value == ">" {
                let own = indent(line);
                let mut block = Vec::new();
                while i < lines.len() && (lines[i].trim().is_empty() || indent(lines[i]) > own) {
                    block.push(lines[i].trim());
                    i += 1;
                }
                block.join(if value == "|" { "\n" } else { " " })
            } else {
                value.trim_matches('"').to_owned()
            };
            if indent(line) == item_indent {
                section = None;
                match key {
                    "expr" => rule.expr = value,
                    "for" => rule.for_ = Some(value),
                    "labels" | "annotations" => section = Some(key),
                    other => panic!("rule {}: unexpected key {other:?}", rule.name),
                }
            } else {
                match section {
                    Some("labels") => rule.labels.insert(key.to_owned(), value),
                    Some("annotations") => rule.annotations.insert(key.to_owned(), value),
                    _ => panic!("rule {}: {line:?} belongs to no section", rule.name),
                };
            }
        }
        rules.push(rule);
    }
    rules
}

fn balanced(expr: &str) -> bool {
    let mut stack = Vec::new();
    let mut in_string = false;
    for c in expr.chars() {
        match c {
            '"' => in_string = !in_string,
            _ if in_string => {}
            '(' | '{' | '[' => stack.push(c),
            ')' | '}' | ']' => {
                let open = match c {
                    ')' => '(',
                    '}' => '{',
                    _ => '[',
                };
                if stack.pop() != Some(open) {
                    return false;
                }
            }
            _ => {}
        }
    }
    stack.is_empty() && !in_string
}

/// Every non-row panel of the dashboard.
fn panels(d: &serde_json::Value) -> Vec<&serde_json::Value> {
    d["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .filter(|p| p["type"] != "row")
        .collect()
}

fn exprs(d: &serde_json::Value) -> Vec<String> {
    panels(d)
        .iter()
        .flat_map(|p| p["targets"].as_array().into_iter().flatten())
        .filter_map(|t| t["expr"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn the_line_readers_understand_the_yaml_they_are_given() {
    let rules = alert_rules(
        "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: |\n          sum(x)\n          > 0\n        for: 5m\n        labels:\n          severity: warning\n        annotations:\n          summary: \"s {{ $labels.x }}\"\n          description: >-\n            one\n            two\n      - alert: B\n        expr: up == 0\n        labels:\n          severity: critical\n",
    );
    assert_eq!(rules.len(), 2);
    assert_eq!(rules[0].name, "A");
    assert_eq!(rules[0].expr, "sum(x)\n> 0");
    assert_eq!(rules[0].for_.as_deref(), Some("5m"));
    assert_eq!(rules[0].labels["severity"], "warning");
    assert_eq!(rules[0].annotations["summary"], "s {{ $labels.x }}");
    assert_eq!(rules[0].annotations["description"], "one two");
    assert_eq!(rules[1].expr, "up == 0");
    assert!(rules[1].annotations.is_empty());
    assert_eq!(
        yaml_value("a:\n  - uid: 'x'\n", "uid").as_deref(),
        Some("x")
    );
    assert_eq!(
        metric_names("rate(hookrelay_a_total{x=\"1\"}[5m]) / xhookrelay_b + hookrelay_c_bucket"),
        BTreeSet::from([
            "hookrelay_a_total".to_owned(),
            "hookrelay_c_bucket".to_owned()
        ])
    );
    assert_eq!(
        exported("hookrelay_request_duration_seconds_bucket"),
        Some("hookrelay_request_duration_seconds")
    );
    assert_eq!(exported("hookrelay_requests_total"), None);
    assert!(balanced("sum by (a) (rate(x{y=\"(\"}[5m]))"));
    assert!(!balanced("sum(rate(x[5m])"));
}

#[test]
fn every_metric_the_dashboard_and_rules_name_is_one_hookrelay_exports() {
    for file in [
        "grafana/dashboards/hookrelay.json",
        "prometheus/alerts.yml",
        "prometheus/alerts.test.yml",
    ] {
        let names = metric_names(&read(file));
        assert!(!names.is_empty(), "{file} names hookrelay metrics");
        for name in names {
            assert!(
                exported(&name).is_some(),
                "{file} uses {name}, which hookrelay does not export (see METRIC_NAMES)"
            );
        }
    }
}

#[test]
fn the_dashboard_charts_every_exported_metric() {
    let charted: BTreeSet<&str> = exprs(&dashboard())
        .iter()
        .flat_map(|e| metric_names(e))
        .filter_map(|n| exported(&n))
        .collect();
    for name in METRIC_NAMES {
        assert!(
            charted.contains(name),
            "{name} is exported but no dashboard panel queries it: add a panel to docker/grafana/dashboards/hookrelay.json"
        );
    }
}

#[test]
fn the_dashboard_is_well_formed_for_grafana() {
    let d = dashboard();
    assert_eq!(d["uid"], "hookrelay-overview");
    assert!(d["title"].as_str().is_some_and(|t| !t.is_empty()));
    let datasource_uid = yaml_value(
        &read("grafana/provisioning/datasources/prometheus.yml"),
        "uid",
    )
    .expect("the provisioned datasource has a uid");

    let all = d["panels"].as_array().expect("panels");
    let ids: BTreeSet<i64> = all.iter().filter_map(|p| p["id"].as_i64()).collect();
    assert_eq!(ids.len(), all.len(), "every panel has its own id");

    let mut cells: BTreeMap<(i64, i64), String> = BTreeMap::new();
    for p in all {
        let title = p["title"].as_str().unwrap_or_default().to_owned();
        let g = &p["gridPos"];
        let (x, y, w, h) = (
            g["x"].as_i64().expect("x"),
            g["y"].as_i64().expect("y"),
            g["w"].as_i64().expect("w"),
            g["h"].as_i64().expect("h"),
        );
        assert!(
            w > 0 && h > 0 && x >= 0 && x + w <= 24,
            "{title}: {g} fits the 24-column grid"
        );
        for cx in x..x + w {
            for cy in y..y + h {
                if let Some(other) = cells.insert((cx, cy), title.clone()) {
                    panic!("panels {other:?} and {title:?} overlap at ({cx}, {cy})");
                }
            }
        }
    }

    for p in panels(&d) {
        let title = p["title"].as_str().expect("every panel has a title");
        assert!(
            p["description"].as_str().is_some_and(|s| !s.is_empty()),
            "{title}: a description tells the operator what it shows"
        );
        assert_eq!(
            p["datasource"]["uid"],
            datasource_uid.as_str(),
            "{title}: datasource"
        );
        let targets = p["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{title} has a query");
        let mut refs = BTreeSet::new();
        for t in targets {
            let expr = t["expr"].as_str().expect("expr");
            assert!(balanced(expr), "{title}: unbalanced expression {expr}");
            assert!(
                expr.contains("instance=~\"$instance\""),
                "{title}: {expr} follows the instance selector"
            );
            assert!(
                refs.insert(t["refId"].as_str().expect("refId")),
                "{title}: refIds are distinct"
            );
        }
    }
    let variable = &d["templating"]["list"][0];
    assert_eq!(variable["name"], "instance");
    assert_eq!(variable["datasource"]["uid"], datasource_uid.as_str());
}

#[test]
fn the_alert_rules_cover_the_failures_operators_act_on() {
    let rules = alert_rules(&read("prometheus/alerts.yml"));
    let names: BTreeSet<&str> = rules.iter().map(|r| r.name.as_str()).collect();
    for wanted in [
        "HookrelayDeadLettersGrowing",
        "HookrelayRetryRecordsOverdue",
        "HookrelayConsumerLagGrowing",
        "HookrelayEndpointsDisabled",
        "HookrelayInstanceNotReady",
    ] {
        assert!(
            names.contains(wanted),
            "{wanted} is missing from alerts.yml"
        );
    }
    assert_eq!(names.len(), rules.len(), "alert names are unique");
    for r in &rules {
        assert!(!r.expr.is_empty(), "{}: expr", r.name);
        assert!(
            balanced(&r.expr),
            "{}: unbalanced expression {}",
            r.name,
            r.expr
        );
        assert!(
            !metric_names(&r.expr).is_empty(),
            "{}: the expression reads a hookrelay metric",
            r.name
        );
        if let Some(d) = &r.for_ {
            humantime::parse_duration(d).unwrap_or_else(|e| panic!("{}: for {d:?}: {e}", r.name));
        }
        let severity = r.labels.get("severity").map(String::as_str);
        assert!(
            matches!(severity, Some("info" | "warning" | "critical")),
            "{}: severity {severity:?}",
            r.name
        );
        for key in ["summary", "description"] {
            assert!(
                r.annotations.get(key).is_some_and(|s| !s.is_empty()),
                "{}: annotation {key}",
                r.name
            );
        }
    }
}

#[test]
fn prometheus_grafana_and_compose_point_at_each_other() {
    let compose = read("compose.yaml");
    let prometheus = read("prometheus/prometheus.yml");

    // Rule files are relative to prometheus.yml, and compose mounts both side by side.
    let rule_files: Vec<String> = prometheus
        .lines()
        .skip_while(|l| !l.starts_with("rule_files:"))
        .skip(1)
        .take_while(|l| l.starts_with(' ') || l.trim().is_empty())
        .filter_map(|l| l.trim().strip_prefix("- ").map(str::to_owned))
        .collect();
    assert!(!rule_files.is_empty(), "prometheus.yml loads rule files");
    assert!(compose.contains("./prometheus/prometheus.yml:/etc/prometheus/prometheus.yml"));
    for file in &rule_files {
        assert!(
            docker_dir().join("prometheus").join(file).is_file(),
            "{file} exists"
        );
        assert!(
            compose.contains(&format!("./prometheus/{file}:/etc/prometheus/{file}")),
            "compose mounts {file} next to prometheus.yml"
        );
    }

    // Every scrape target is a hookrelay service listening on that port.
    let targets: Vec<&str> = prometheus
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- hookrelay-"))
        .collect();
    assert_eq!(targets.len(), 2, "both instances are scraped");
    for target in targets {
        let (n, port) = target.split_once(':').expect("host:port");
        assert!(
            compose.contains(&format!("\n  hookrelay-{n}:\n")),
            "service hookrelay-{n}"
        );
        assert!(
            compose.contains(&format!("HOOKRELAY__ADMIN__LISTEN: 0.0.0.0:{port}")),
            "hookrelay-{n} listens on {port}"
        );
    }

    // Grafana: the datasource is the compose Prometheus; dashboards load from the mount.
    let datasource = read("grafana/provisioning/datasources/prometheus.yml");
    assert_eq!(
        yaml_value(&datasource, "url").as_deref(),
        Some("http://prometheus:9090")
    );
    assert!(compose.contains("\n  prometheus:\n"));
    let provider = read("grafana/provisioning/dashboards/hookrelay.yml");
    let path = yaml_value(&provider, "path").expect("dashboard provider path");
    assert!(
        compose.contains(&format!("./grafana/dashboards:{path}:ro")),
        "compose mounts the dashboards at {path}"
    );
    assert!(compose.contains("./grafana/provisioning:/etc/grafana/provisioning:ro"));
    let home = yaml_value(&compose, "GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH").expect("home");
    let file = home
        .strip_prefix(&format!("{path}/"))
        .expect("home dashboard under the mount");
    assert!(docker_dir().join("grafana/dashboards").join(file).is_file());
}

#[test]
fn the_compose_config_is_a_valid_hookrelay_config_for_both_instances() {
    let file = docker_dir().join("hookrelay.toml");
    for (n, port) in [(1, 8081), (2, 8082)] {
        let env: Vec<(String, String)> = [
            ("HOOKRELAY__KAFKA__CLIENT_ID", format!("hookrelay-{n}")),
            ("HOOKRELAY__ADMIN__LISTEN", format!("0.0.0.0:{port}")),
            (
                "HOOKRELAY__SUBSCRIPTIONS__DATA_DIR",
                format!("/var/lib/hookrelay/hookrelay-{n}"),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let config = Config::load_from(Some(&file), &env)
            .unwrap_or_else(|e| panic!("docker/hookrelay.toml: {e}"));
        assert_eq!(config.kafka.bootstrap_servers, "kafka:19092");
        assert_eq!(
            config.kafka.group_id, "hookrelay",
            "one group for both instances"
        );
        assert_eq!(config.topics.replication_factor, 1, "a single broker");
        assert_eq!(config.admin.listen.port(), port);
    }
}

#[test]
fn the_image_build_context_holds_everything_the_build_reads() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let ignore = read("Dockerfile.dockerignore");
    let included: BTreeSet<&str> = ignore
        .lines()
        .filter_map(|l| l.trim().strip_prefix('!'))
        .map(|p| p.trim_end_matches('/'))
        .collect();

    // Top-level entries the build reads: the manifest's target directories, and whatever
    // `include_str!`/`include_bytes!` pull in from outside `src`.
    let mut needed: BTreeSet<String> = ["Cargo.toml", "Cargo.lock", "src", "benches", "tests"]
        .into_iter()
        .map(str::to_owned)
        .collect();
    let mut dirs = vec![root.join("src")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("read src") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("read source");
            for marker in ["include_str!(\"", "include_bytes!(\""] {
                for piece in text.split(marker).skip(1) {
                    let Some(relative) = piece.split('"').next() else {
                        continue;
                    };
                    let mut resolved = path.parent().expect("parent").to_path_buf();
                    for part in Path::new(relative).components() {
                        match part {
                            std::path::Component::ParentDir => {
                                resolved.pop();
                            }
                            std::path::Component::Normal(p) => resolved.push(p),
                            _ => {}
                        }
                    }
                    let top = resolved
                        .strip_prefix(root)
                        .expect("included files live in the repository")
                        .components()
                        .next()
                        .expect("a path")
                        .as_os_str()
                        .to_string_lossy()
                        .into_owned();
                    needed.insert(top);
                }
            }
        }
    }
    for entry in &needed {
        assert!(
            included.contains(entry.as_str()),
            "docker/Dockerfile.dockerignore leaves {entry} out of the build context"
        );
    }
    let dockerfile = read("Dockerfile");
    assert!(dockerfile.contains("FROM rust:bookworm AS build"));
    assert!(dockerfile.contains("FROM debian:bookworm-slim"));
    assert!(
        dockerfile.contains("\nUSER hookrelay\n"),
        "the service does not run as root"
    );
}

#[test]
fn alert_rules_pass_their_promtool_unit_tests() {
    let prometheus_dir = docker_dir().join("prometheus");
    let run = |args: &[&str]| {
        std::process::Command::new("promtool")
            .args(args)
            .current_dir(&prometheus_dir)
            .output()
    };
    let Ok(version) = run(&["--version"]) else {
        eprintln!("promtool is not installed (Debian package `prometheus`): skipping its checks");
        return;
    };
    assert!(version.status.success());
    for args in [
        &["check", "config", "prometheus.yml"][..],
        &["test", "rules", "alerts.test.yml"][..],
    ] {
        let out = run(args).expect("promtool runs");
        assert!(
            out.status.success(),
            "promtool {}:\n{}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
