//! Reading runs at the dashboard's pace, on SQLite and PostgreSQL: run listings filtered by
//! item and score range and sorted by the weighted score or any scorer (the SQL must agree with
//! the scores the listing returns), and two configurations compared item by item.

mod common;

use common::{TestServer, assert_error};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use engine::demo::TEXTS;

/// An experiment over 8 items with two scorers, run in two configurations (16 runs).
async fn scored(server: &TestServer) -> (String, String) {
    let admin = server.setup_admin().await;
    let call = |path: &'static str, body: Value| {
        let (server, admin) = (server, admin.clone());
        async move {
            let (s, v) = server
                .call(Method::POST, path, Some(&admin), Some(body))
                .await;
            assert!(s.is_success(), "{path}: {s} {v}");
            v
        }
    };
    let endpoint = call(
        "/api/v1/endpoints",
        json!({"name": "sim", "kind": "simulated"}),
    )
    .await;
    let project = call("/api/v1/projects", json!({"name": "p"})).await;
    let items: Vec<Value> = TEXTS
        .iter()
        .map(|t| {
            json!({"input": {"text": t},
                        "reference": engine::providers::simulated::ideal_answer(t).join(", ")})
        })
        .collect();
    let e = call("/api/v1/experiments", json!({
        "project_id": project["id"], "name": "extraction", "sample_data": items,
        "pipeline_stages": [{"name": "extract", "endpoint_id": endpoint["id"], "model": "sim-medium",
            "user": "Extract the entities.\n\n{{ input.text }}"}],
        "scoring_config": [{"kind": "lexical_similarity", "name": "f1", "weight": 2},
                           {"kind": "length", "name": "short", "max": 60, "falloff": 1}],
    })).await;
    let id = e["id"].as_str().unwrap().to_owned();
    for (model, t) in [("sim-small", 0.9), ("sim-large", 0.2)] {
        call(
            "/api/v1/runs",
            json!({"experiment_id": id,
            "stages": [{"model": model, "params": {"temperature": t}}]}),
        )
        .await;
    }
    (admin, id)
}

fn runs(page: &Value) -> &Vec<Value> {
    page["runs"].as_array().unwrap()
}

#[tokio::test]
async fn run_lists_filter_and_sort_by_scores() {
    for server in TestServer::all().await {
        let (admin, e) = scored(&server).await;
        let list = |query: String| {
            let (server, admin, e) = (&server, &admin, &e);
            async move {
                let (s, page) = server
                    .get(
                        &format!("/api/v1/experiments/{e}/runs?{query}"),
                        Some(admin),
                    )
                    .await;
                assert_eq!(s, StatusCode::OK, "{query}: {page}");
                page
            }
        };
        let all = list("limit=100".into()).await;
        assert_eq!(all["total"], 16);
        let weighted: Vec<f64> = runs(&all)
            .iter()
            .map(|r| r["weighted_score"].as_f64().unwrap())
            .collect();
        assert!(
            weighted.iter().any(|w| *w != weighted[0]),
            "the scores vary: {weighted:?}"
        );

        // Sorted by the weighted score, best first, paged: the pages follow on.
        let first = list("sort=-score&limit=10".into()).await;
        let second = list("sort=-score&limit=10&offset=10".into()).await;
        let ranked: Vec<f64> = runs(&first)
            .iter()
            .chain(runs(&second))
            .map(|r| r["weighted_score"].as_f64().unwrap())
            .collect();
        let mut expected = weighted.clone();
        expected.sort_by(|a, b| b.total_cmp(a));
        assert_eq!(ranked.len(), 16);
        for (got, want) in ranked.iter().zip(&expected) {
            assert!((got - want).abs() < 1e-9, "{ranked:?} vs {expected:?}");
        }

        // By one scorer, worst first.
        let by_f1 = list("sort=score:f1&limit=100".into()).await;
        let f1: Vec<f64> = runs(&by_f1)
            .iter()
            .map(|r| r["scores"]["f1"].as_f64().unwrap())
            .collect();
        assert!(f1.windows(2).all(|w| w[0] <= w[1]), "{f1:?}");

        // A score range over the weighted score, and over one scorer.
        let cut = expected[5];
        let above = list(format!("min_score={cut}&limit=100")).await;
        let want = weighted.iter().filter(|w| **w >= cut - 1e-12).count();
        assert_eq!(above["total"], want as i64, "{above}");
        assert!(
            runs(&above)
                .iter()
                .all(|r| r["weighted_score"].as_f64().unwrap() >= cut - 1e-9)
        );
        let (lo, hi) = (f1[3], f1[12]);
        let band = list(format!(
            "score_by=f1&min_score={lo}&max_score={hi}&limit=100"
        ))
        .await;
        let want = f1
            .iter()
            .filter(|v| **v >= lo - 1e-12 && **v <= hi + 1e-12)
            .count();
        assert_eq!(band["total"], want as i64);
        assert!(runs(&band).iter().all(|r| {
            let v = r["scores"]["f1"].as_f64().unwrap();
            v >= lo - 1e-9 && v <= hi + 1e-9
        }));

        // One item's runs: one per configuration.
        let item = runs(&all)[0]["item_id"].as_str().unwrap().to_owned();
        let one = list(format!("item_id={item}")).await;
        assert_eq!(one["total"], 2);
        assert!(runs(&one).iter().all(|r| r["item_id"] == item.as_str()));

        // Bad filters name their field and change nothing.
        let path = |q: &str| format!("/api/v1/experiments/{e}/runs?{q}");
        for (q, field) in [
            ("min_score=2", "min_score"),
            ("min_score=0.8&max_score=0.2", "max_score"),
            ("sort=-score:nope", "sort"),
            ("sort=sideways", "sort"),
            ("score_by=nope&min_score=0.1", "score_by"),
            ("sort=-score:f1&score_by=short", "score_by"),
            ("offset=9223372036854775807", "offset"),
        ] {
            let got = server.get(&path(q), Some(&admin)).await;
            assert_error(&got, StatusCode::UNPROCESSABLE_ENTITY, Some(field));
        }
        server.stop().await;
    }
}

#[tokio::test]
async fn two_configurations_compare_item_by_item() {
    for server in TestServer::all().await {
        let (admin, e) = scored(&server).await;
        let (s, board) = server
            .get(
                &format!("/api/v1/experiments/{e}/leaderboard"),
                Some(&admin),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{board}");
        let entries = board["entries"].as_array().unwrap();
        let (a, b) = (&entries[0], &entries[1]);
        let (ka, kb) = (
            a["config_key"].as_str().unwrap(),
            b["config_key"].as_str().unwrap(),
        );
        let path = |q: &str| format!("/api/v1/experiments/{e}/configs/compare?a={ka}&b={kb}{q}");
        let (s, cmp) = server.get(&path("&limit=5"), Some(&admin)).await;
        assert_eq!(s, StatusCode::OK, "{cmp}");
        assert_eq!(cmp["a"]["config_key"], ka);
        assert_eq!(cmp["scores"][0]["scorer"], "weighted score");
        assert!(
            (cmp["scores"][0]["a"].as_f64().unwrap() - a["score"].as_f64().unwrap()).abs() < 1e-9
        );
        assert!(
            (cmp["scores"][0]["b"].as_f64().unwrap() - b["score"].as_f64().unwrap()).abs() < 1e-9
        );
        let names: Vec<&str> = cmp["differences"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["model", "temperature"], "{cmp}");
        assert_eq!(cmp["paired"]["items"], 8, "{cmp}");
        assert!(cmp["paired"]["verdict"].as_str().unwrap().contains('A'));
        assert_eq!(cmp["total"], 8);
        let pairs = cmp["items"].as_array().unwrap();
        assert_eq!(pairs.len(), 5);
        for p in pairs {
            let (x, y) = (&p["a"], &p["b"]);
            assert_ne!(x["run_id"], y["run_id"]);
            let rebuilt: String = p["output"]["spans"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|s| s["op"] != "added")
                .map(|s| s["text"].as_str().unwrap())
                .collect();
            assert_eq!(rebuilt, x["output"].as_str().unwrap());
            // Both runs are of this item.
            for run in [x, y] {
                let (_, r) = server
                    .get(
                        &format!("/api/v1/runs/{}", run["run_id"].as_str().unwrap()),
                        Some(&admin),
                    )
                    .await;
                assert_eq!(r["item_id"], p["item_id"]);
            }
        }
        // The pairwise judge with its default prompt, played by the simulated endpoint: it
        // reads every item and prefers the better configuration.
        let (_, endpoints) = server.get("/api/v1/endpoints", Some(&admin)).await;
        let (s, judged) = server
            .call(
                Method::POST,
                &format!("/api/v1/experiments/{e}/compare"),
                Some(&admin),
                Some(json!({"first": ka, "second": kb, "endpoint_id": endpoints[0]["id"], "model": "sim-large"})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{judged}");
        assert_eq!(judged["failures"], 0, "{judged}");
        let (wins, losses) = (
            judged["first_wins"].as_i64().unwrap(),
            judged["second_wins"].as_i64().unwrap(),
        );
        assert_eq!(wins + losses + judged["ties"].as_i64().unwrap(), 8);
        assert!(wins > losses, "the leader wins more often: {judged}");
        assert!(
            judged["details"][0]["reply"]
                .as_str()
                .unwrap()
                .starts_with("Winner: ")
        );

        let (_, rest) = server.get(&path("&limit=5&offset=5"), Some(&admin)).await;
        assert_eq!(rest["items"].as_array().unwrap().len(), 3);

        let zeros = "0".repeat(64);
        for (q, field) in [
            (format!("a={ka}&b={ka}"), "b"),
            (format!("a=nope&b={kb}"), "a"),
            (format!("a={zeros}&b={kb}"), "a"),
            (format!("a={ka}&b={kb}&limit=1000"), "limit"),
            (
                format!("a={ka}&b={kb}&offset=9223372036854775807"),
                "offset",
            ),
        ] {
            let got = server
                .get(
                    &format!("/api/v1/experiments/{e}/configs/compare?{q}"),
                    Some(&admin),
                )
                .await;
            assert_error(&got, StatusCode::UNPROCESSABLE_ENTITY, Some(field));
        }
        server.stop().await;
    }
}

#[tokio::test]
async fn a_price_change_reprices_runs_and_the_leaderboard() {
    for server in TestServer::all().await {
        let (admin, e) = scored(&server).await;
        let (s, page) = server
            .get(
                &format!("/api/v1/experiments/{e}/runs?limit=100"),
                Some(&admin),
            )
            .await;
        assert_eq!(s, StatusCode::OK);
        assert!(
            runs(&page).iter().all(|r| r["cost_estimate"] == 0.0),
            "{page}"
        );
        let (s, prices) = server
            .call(
                Method::PUT,
                "/api/v1/admin/pricing",
                Some(&admin),
                Some(json!([{"model": "sim-large", "input_per_million": 1000.0, "output_per_million": 3000.0}])),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{prices}");
        let (_, page) = server
            .get(
                &format!("/api/v1/experiments/{e}/runs?limit=100"),
                Some(&admin),
            )
            .await;
        let mut large = 0.0;
        for r in runs(&page) {
            let model = r["config"]["stages"][0]["model"].as_str().unwrap();
            let cost = r["cost_estimate"].as_f64().unwrap();
            if model == "sim-large" {
                let want = (r["tokens_in"].as_f64().unwrap() * 1000.0
                    + r["tokens_out"].as_f64().unwrap() * 3000.0)
                    / 1e6;
                assert!((cost - want).abs() < 1e-9, "{r}");
                assert!(cost > 0.0);
                large += cost;
            } else {
                assert_eq!(cost, 0.0, "{r}");
            }
        }
        // The leaderboard's cost (of all its runs) follows.
        let (_, board) = server
            .get(
                &format!("/api/v1/experiments/{e}/leaderboard"),
                Some(&admin),
            )
            .await;
        let entry = board["entries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["config"]["stages"][0]["model"] == "sim-large")
            .unwrap();
        assert!(
            (entry["cost"].as_f64().unwrap() - large).abs() < 1e-9,
            "{entry}"
        );

        // Without a price, the runs have no cost.
        let s = server
            .call(
                Method::DELETE,
                "/api/v1/admin/pricing/sim-large",
                Some(&admin),
                None,
            )
            .await
            .0;
        assert_eq!(s, StatusCode::NO_CONTENT);
        let (_, page) = server
            .get(
                &format!("/api/v1/experiments/{e}/runs?limit=100"),
                Some(&admin),
            )
            .await;
        for r in runs(&page) {
            let large = r["config"]["stages"][0]["model"] == "sim-large";
            assert_eq!(r["cost_estimate"].is_null(), large, "{r}");
        }
        let (s, cache) = server.get("/api/v1/admin/cache", Some(&admin)).await;
        assert_eq!(s, StatusCode::OK, "{cache}");
        assert_eq!(cache["entries"], 16, "{cache}");
        assert!(cache["bytes"].as_i64().unwrap() > 0 && cache["tokens"].as_i64().unwrap() > 0);
        let models: Vec<&str> = cache["by_model"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["model"].as_str().unwrap())
            .collect();
        assert_eq!(models.len(), 2, "{cache}");
        server.stop().await;
    }
}
