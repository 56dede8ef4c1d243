//! Charts over REST on SQLite and PostgreSQL: a sweep of 2 models × 3 temperatures × 2 prompt
//! variants on the simulated provider, priced so cost differs; every chart's numbers checked
//! against the leaderboard, the Pareto frontier checked to be non-dominated, the SVGs checked
//! to be accessible and escaped, bad options refused naming the field, guests may read, and
//! the markdown report embeds the charts.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use base64::Engine as _;
use common::{TestServer, assert_error};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const ODD_VARIANT: &str = "terse <&> \"q\"";

async fn post(server: &TestServer, token: &str, path: &str, body: Value) -> (StatusCode, Value) {
    server
        .call(Method::POST, path, Some(token), Some(body))
        .await
}

/// GET as text: status, content type, body.
async fn text(
    server: &TestServer,
    token: Option<&str>,
    path: &str,
) -> (StatusCode, String, String) {
    let mut req = TestServer::client().get(format!("{}{path}", server.url));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let res = req.send().await.unwrap();
    let status = res.status();
    let kind = res
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, kind, res.text().await.unwrap())
}

struct Setup {
    admin: String,
    base: String,
}

async fn setup(server: &TestServer) -> Setup {
    let admin = server.setup_admin().await;
    let (s, endpoint) = post(
        server,
        &admin,
        "/api/v1/endpoints",
        json!({"name": "sim", "kind": "simulated"}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{endpoint}");
    let (s, prices) = server
        .call(
            Method::PUT,
            "/api/v1/admin/pricing",
            Some(&admin),
            Some(json!([
                {"model": "sim-large", "input_per_million": 10.0, "output_per_million": 30.0},
                {"model": "sim-small", "input_per_million": 0.5, "output_per_million": 1.5},
            ])),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{prices}");
    let (_, project) = post(server, &admin, "/api/v1/projects", json!({"name": "p"})).await;
    let items: Vec<Value> = [
        "Ada Lovelace met Charles Babbage in London in 1833.",
        "Grace Hopper built COBOL at Remington Rand.",
        "Alan Turing worked at Bletchley Park in 1940.",
        "Katherine Johnson computed orbits for NASA in 1962.",
    ]
    .iter()
    .map(|t| json!({"input": {"text": t}, "reference": engine::providers::simulated::ideal_answer(t).join(", ")}))
    .collect();
    let (s, e) = post(server, &admin, "/api/v1/experiments", json!({
        "project_id": project["id"], "name": "charted", "sample_data": items,
        "pipeline_stages": [{"name": "extract", "endpoint_id": endpoint["id"], "model": "sim-medium",
            "system": "Extract the entities.", "user": "{{ input.text }}", "params": {"temperature": 0.5}}],
        "parameter_space": {"stages": [{
            "prompts": [{"name": ODD_VARIANT, "system": "Only a comma-separated list."},
                        {"name": "polite", "system": "Please think about the entities."}],
            "models": [{"model": "sim-large"}, {"model": "sim-small"}],
            "params": {"temperature": [0.1, 0.5, 0.9]}}]},
        "scoring_config": [{"kind": "lexical_similarity", "name": "f1"},
                           {"kind": "length", "name": "short", "unit": "words", "max": 6}],
    })).await;
    assert_eq!(s, StatusCode::CREATED, "{e}");
    Setup {
        admin,
        base: format!("/api/v1/experiments/{}", e["id"].as_str().unwrap()),
    }
}

async fn sweep(server: &TestServer, f: &Setup) {
    let (s, sweep) = post(
        server,
        &f.admin,
        &format!("{}/sweep", f.base),
        json!({"strategy": {"kind": "grid"}}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{sweep}");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let path = format!("/api/v1/sweeps/{}", sweep["id"].as_str().unwrap());
        let (_, now) = server.get(&path, Some(&f.admin)).await;
        if now["status"] == "completed" {
            return;
        }
        assert!(Instant::now() < deadline, "{now}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn chart(server: &TestServer, f: &Setup, file: &str) -> Value {
    let (s, body) = server
        .get(&format!("{}/charts/{file}", f.base), Some(&f.admin))
        .await;
    assert_eq!(s, StatusCode::OK, "{file}: {body}");
    body
}

fn points(chart: &Value) -> Vec<(String, Value)> {
    chart["series"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| {
            let name = s["name"].as_str().unwrap().to_owned();
            s["points"]
                .as_array()
                .unwrap()
                .iter()
                .map(move |p| (name.clone(), p.clone()))
        })
        .collect()
}

fn close(a: f64, b: f64, what: &str) {
    assert!((a - b).abs() < 1e-6, "{what}: {a} vs {b}");
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

#[tokio::test]
async fn empty_experiments_get_charts_that_say_so() {
    for server in TestServer::all().await {
        let f = setup(&server).await;
        let (s, list) = server
            .get(&format!("{}/charts", f.base), Some(&f.admin))
            .await;
        assert_eq!(s, StatusCode::OK, "{list}");
        let kinds: Vec<&str> = list
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["kind"].as_str().unwrap())
            .collect();
        assert_eq!(
            kinds,
            [
                "score-vs-param",
                "score-vs-cost",
                "score-vs-latency",
                "distribution",
                "progress"
            ]
        );
        assert!(
            list.as_array()
                .unwrap()
                .iter()
                .all(|c| c["available"] == false),
            "{list}"
        );
        for kind in kinds {
            let data = chart(&server, &f, &format!("{kind}.json")).await;
            assert!(points(&data).is_empty(), "{data}");
            assert!(
                data["description"]
                    .as_str()
                    .unwrap()
                    .starts_with("No data yet"),
                "{data}"
            );
            let (s, ct, svg) = text(
                &server,
                Some(&f.admin),
                &format!("{}/charts/{kind}.svg", f.base),
            )
            .await;
            assert_eq!((s, ct.as_str()), (StatusCode::OK, "image/svg+xml"));
            assert!(
                svg.starts_with("<svg") && svg.contains(">No data yet</text>"),
                "{svg}"
            );
        }
        server.stop().await;
    }
}

#[tokio::test]
async fn charts_match_the_leaderboard() {
    for server in TestServer::all().await {
        let f = setup(&server).await;
        sweep(&server, &f).await;
        let (_, board) = server
            .get(&format!("{}/leaderboard?limit=500", f.base), Some(&f.admin))
            .await;
        let entries = board["entries"].as_array().unwrap().clone();
        assert_eq!(entries.len(), 12, "{board}");
        let by_key: HashMap<&str, &Value> = entries
            .iter()
            .map(|e| (e["config_key"].as_str().unwrap(), e))
            .collect();
        let stage = |e: &Value, what: &str| e["config"]["stages"][0][what].clone();

        // The listing names the varied parameters; temperature is numeric and the default.
        let (_, list) = server
            .get(&format!("{}/charts", f.base), Some(&f.admin))
            .await;
        let param_chart = &list[0];
        assert!(
            list.as_array()
                .unwrap()
                .iter()
                .all(|c| c["available"] == true),
            "{list}"
        );
        let names: Vec<&str> = param_chart["params"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["prompt", "model", "temperature"], "{list}");
        assert_eq!(param_chart["params"][2]["numeric"], true);
        assert_eq!(param_chart["params"][2]["values"], 3);
        assert_eq!(param_chart["default_param"], "temperature");
        assert!(
            param_chart["path"]
                .as_str()
                .unwrap()
                .ends_with("/charts/score-vs-param.svg")
        );

        // Score by temperature, per model: the mean over both prompt variants' items.
        let data = chart(&server, &f, "score-vs-param.json").await;
        assert_eq!(
            (data["param"].as_str(), data["x_scale"].as_str()),
            (Some("temperature"), Some("numeric"))
        );
        let pts = points(&data);
        assert_eq!(pts.len(), 6, "{data}");
        for (model, p) in &pts {
            let t = num(&p["x"]);
            let scores: Vec<f64> = entries
                .iter()
                .filter(|e| {
                    stage(e, "model") == model.as_str() && stage(e, "params")["temperature"] == t
                })
                .map(|e| num(&e["score"]))
                .collect();
            assert_eq!(scores.len(), 2, "{model} at {t}");
            close(
                num(&p["y"]),
                scores.iter().sum::<f64>() / 2.0,
                "mean by temperature",
            );
            assert_eq!(p["n"], 8, "2 configurations × 4 items");
            assert!(
                num(&p["low"]) <= num(&p["y"]) && num(&p["y"]) <= num(&p["high"]),
                "{p}"
            );
        }

        // By prompt variant: categories, user text escaped in the SVG.
        let data = chart(&server, &f, "score-vs-param.json?param=prompt").await;
        assert_eq!(data["x_scale"], "category");
        assert!(
            points(&data)
                .iter()
                .any(|(_, p)| p["category"] == ODD_VARIANT),
            "{data}"
        );
        let (s, ct, svg) = text(
            &server,
            Some(&f.admin),
            &format!("{}/charts/score-vs-param.svg?param=prompt", f.base),
        )
        .await;
        assert_eq!((s, ct.as_str()), (StatusCode::OK, "image/svg+xml"));
        assert!(
            svg.contains("terse &lt;&amp;&gt;") && !svg.contains("<&>"),
            "{svg}"
        );
        assert!(
            svg.contains(">prompt</text>") && svg.contains(">Weighted score</text>"),
            "{svg}"
        );

        // Score vs cost and latency: each point is its configuration's leaderboard numbers, and
        // the frontier is exactly the non-dominated points.
        for (kind, x_of) in [
            (
                "score-vs-cost",
                (|e: &Value| num(&e["cost"]) / num(&e["runs"])) as fn(&Value) -> f64,
            ),
            ("score-vs-latency", |e: &Value| num(&e["latency_ms"])),
        ] {
            let data = chart(&server, &f, &format!("{kind}.json")).await;
            let pts = points(&data);
            assert_eq!(pts.len(), 12, "{kind}: every configuration once: {data}");
            let xy: Vec<(f64, f64)> = pts
                .iter()
                .map(|(_, p)| (num(&p["x"]), num(&p["y"])))
                .collect();
            for (_, p) in &pts {
                let e = by_key[p["config_key"].as_str().unwrap()];
                close(num(&p["y"]), num(&e["score"]), "score");
                close(num(&p["x"]), x_of(e), kind);
                assert_eq!(p["label"], e["label"]);
            }
            let frontier: Vec<&str> = data["frontier"]
                .as_array()
                .unwrap()
                .iter()
                .map(|k| k.as_str().unwrap())
                .collect();
            let on: Vec<&str> = pts
                .iter()
                .filter(|(s, _)| s == "Pareto frontier")
                .map(|(_, p)| p["config_key"].as_str().unwrap())
                .collect();
            assert_eq!(frontier, on, "{kind}");
            assert!(!frontier.is_empty());
            let dominated = |(x, y): (f64, f64)| {
                xy.iter()
                    .any(|&(a, b)| a <= x && b >= y && (a < x || b > y))
            };
            for (i, (_, p)) in pts.iter().enumerate() {
                let is_on = frontier.contains(&p["config_key"].as_str().unwrap());
                let equal_to_frontier = pts
                    .iter()
                    .any(|(s, q)| s == "Pareto frontier" && (num(&q["x"]), num(&q["y"])) == xy[i]);
                assert_eq!(is_on || equal_to_frontier, !dominated(xy[i]), "{kind}: {p}");
            }
            assert!(
                data["description"]
                    .as_str()
                    .unwrap()
                    .contains("Pareto frontier")
            );
        }
        // sim-small is priced lower: the cheapest configuration is on the frontier.
        let cost = chart(&server, &f, "score-vs-cost.json").await;
        let cheapest = entries
            .iter()
            .min_by(|a, b| {
                (num(&a["cost"]) / num(&a["runs"])).total_cmp(&(num(&b["cost"]) / num(&b["runs"])))
            })
            .unwrap();
        assert_eq!(stage(cheapest, "model"), "sim-small");
        assert!(cost["frontier"].as_array().unwrap().iter().any(|k| {
            let e = by_key[k.as_str().unwrap()];
            (num(&e["cost"]) / num(&e["runs"]) - num(&cheapest["cost"]) / num(&cheapest["runs"]))
                .abs()
                < 1e-12
        }));

        // The top 3, in leaderboard order, each with its spread around its score.
        let data = chart(&server, &f, "distribution.json?top=3").await;
        let pts = points(&data);
        assert_eq!(pts.len(), 3);
        for (i, (_, p)) in pts.iter().enumerate() {
            assert_eq!(p["config_key"], entries[i]["config_key"], "rank {}", i + 1);
            assert_eq!(p["category"], format!("#{}", i + 1));
            close(num(&p["y"]), num(&entries[i]["score"]), "mean of items");
            let s = &p["spread"];
            let v: Vec<f64> = ["min", "q1", "median", "q3", "max"]
                .iter()
                .map(|k| num(&s[*k]))
                .collect();
            assert!(
                v.windows(2).all(|w| w[0] <= w[1]) && v[0] <= num(&p["y"]) && num(&p["y"]) <= v[4],
                "{p}"
            );
            assert_eq!(p["n"], 4);
        }
        assert_eq!(
            points(&chart(&server, &f, "distribution.json").await).len(),
            5
        );

        // Progress: every completed run, and the best score now.
        let data = chart(&server, &f, "progress.json").await;
        let runs = data["series"][0]["points"].as_array().unwrap();
        assert!(runs.len() <= 60 && !runs.is_empty());
        assert_eq!(runs.last().unwrap()["y"], 48.0, "{data}");
        assert!(runs.windows(2).all(|w| num(&w[0]["y"]) <= num(&w[1]["y"])));
        let best = data["series"][1]["points"].as_array().unwrap();
        close(
            num(&best.last().unwrap()["y"]),
            num(&entries[0]["score"]),
            "best now",
        );
        assert_eq!(data["series"][1]["axis"], 1);

        // One scorer instead of the weighted score.
        let data = chart(&server, &f, "score-vs-cost.json?scorer=f1").await;
        assert_eq!(data["scorer"], "f1");
        for (_, p) in points(&data) {
            let e = by_key[p["config_key"].as_str().unwrap()];
            close(num(&p["y"]), num(&e["scorers"]["f1"]["mean"]), "f1 mean");
        }

        // Every SVG: accessible (title, description, axis names), well formed enough.
        for kind in [
            "score-vs-param",
            "score-vs-cost",
            "score-vs-latency",
            "distribution",
            "progress",
        ] {
            let (s, ct, svg) = text(
                &server,
                Some(&f.admin),
                &format!("{}/charts/{kind}.svg", f.base),
            )
            .await;
            assert_eq!(
                (s, ct.as_str()),
                (StatusCode::OK, "image/svg+xml"),
                "{kind}"
            );
            assert!(
                svg.starts_with("<svg role=\"img\" aria-labelledby=\""),
                "{kind}: {svg}"
            );
            assert!(
                svg.contains("<title id=\"") && svg.contains("<desc id=\""),
                "{kind}"
            );
            assert_eq!(svg.matches("<svg").count(), svg.matches("</svg>").count());
            assert_eq!(svg.matches("<text").count(), svg.matches("</text>").count());
            assert!(
                !svg.contains("NaN") && !svg.contains("No data yet"),
                "{kind}: {svg}"
            );
            let x_name = match kind {
                "score-vs-param" => "temperature",
                "score-vs-cost" => "runs ($)",
                "score-vs-latency" => "Mean latency per run (ms)",
                "distribution" => "Configuration (rank)",
                _ => "since the first run ended",
            };
            assert!(svg.contains(x_name), "{kind} names its x axis: {svg}");
        }
        server.stop().await;
    }
}

#[tokio::test]
async fn bad_options_are_refused_guests_read_and_the_report_embeds_charts() {
    for server in TestServer::all().await {
        let f = setup(&server).await;
        sweep(&server, &f).await;
        let get = |path: String| {
            let server = &server;
            let admin = f.admin.clone();
            async move { server.get(&path, Some(&admin)).await }
        };
        let base = &f.base;
        for (query, field) in [
            ("score-vs-param.json?param=nope", "param"),
            ("score-vs-param.svg?param=top_p", "param"),
            ("score-vs-cost.json?scorer=nope", "scorer"),
            ("distribution.json?top=0", "top"),
            ("distribution.svg?top=21", "top"),
            ("sideways.svg", "file"),
            ("progress.png", "file"),
            ("progress", "file"),
        ] {
            assert_error(
                &get(format!("{base}/charts/{query}")).await,
                StatusCode::UNPROCESSABLE_ENTITY,
                Some(field),
            );
        }
        assert_error(
            &get(format!("{base}/charts/progress.json?color=red")).await,
            StatusCode::BAD_REQUEST,
            Some("color"),
        );
        let missing = format!("/api/v1/experiments/{}/charts", uuid::Uuid::new_v4());
        assert_eq!(get(missing.clone()).await.0, StatusCode::NOT_FOUND);
        assert_eq!(
            get(format!("{missing}/progress.svg")).await.0,
            StatusCode::NOT_FOUND
        );

        // Guests read charts; nobody signed in does not.
        let guest = server.user_token(&f.admin, "gus", "guest").await;
        let (s, ct, svg) = text(
            &server,
            Some(&guest),
            &format!("{base}/charts/score-vs-cost.svg"),
        )
        .await;
        assert_eq!((s, ct.as_str()), (StatusCode::OK, "image/svg+xml"), "{svg}");
        assert_eq!(
            server.get(&format!("{base}/charts"), Some(&guest)).await.0,
            StatusCode::OK
        );
        assert_eq!(
            server.get(&format!("{base}/charts"), None).await.0,
            StatusCode::UNAUTHORIZED
        );
        let (s, _, _) = text(&server, None, &format!("{base}/charts/progress.svg")).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);

        // The report embeds each chart as a data URI with its numbers.
        let (s, _, report) = text(&server, Some(&f.admin), &format!("{base}/export/report")).await;
        assert_eq!(s, StatusCode::OK);
        assert!(report.contains("## Charts"), "{report}");
        let uris: Vec<&str> = report
            .split("](data:image/svg+xml;base64,")
            .skip(1)
            .collect();
        // prompt, model, temperature; cost; latency; distribution; progress.
        assert_eq!(uris.len(), 7, "{report}");
        for uri in uris {
            let b64 = &uri[..uri.find(')').unwrap()];
            let svg = String::from_utf8(
                base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .unwrap(),
            )
            .unwrap();
            assert!(
                svg.starts_with("<svg role=\"img\"") && svg.ends_with("</svg>"),
                "{svg}"
            );
        }
        assert!(
            report
                .contains("| Rank | Configuration | Mean | Min | Q1 | Median | Q3 | Max | Items |")
        );
        assert!(report.contains("Pareto frontier:\n\n| Configuration | Cost per run | Score |"));
        assert!(
            report.contains("terse <&> \"q\""),
            "the table keeps the variant's name"
        );
        server.stop().await;
    }
}
