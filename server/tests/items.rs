//! Sample items at size, on SQLite and PostgreSQL: uploads streamed past the 2 MiB body cap
//! (up to MAX_UPLOAD_MB), bad lines listed with their count, refused files writing nothing,
//! `skip_invalid`, and appending to what is there; named datasets; long inputs; and two runs
//! over such items compared word by word.

mod common;

use std::fmt::Write;

use common::{TestServer, assert_error};
use engine::testing::TestDatabase;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

struct Fixture {
    admin: String,
    experiment: String,
}

async fn fixture(server: &TestServer) -> Fixture {
    let admin = server.setup_admin().await;
    let (_, endpoint) = server
        .call(
            Method::POST,
            "/api/v1/endpoints",
            Some(&admin),
            Some(json!({"name": "sim", "kind": "simulated"})),
        )
        .await;
    let (_, project) = server
        .call(
            Method::POST,
            "/api/v1/projects",
            Some(&admin),
            Some(json!({"name": "p"})),
        )
        .await;
    let (s, e) = server
        .call(Method::POST, "/api/v1/experiments", Some(&admin), Some(json!({
            "project_id": project["id"], "name": "docs",
            "sample_data": [{"id": "seed", "input": {"text": "one", "doc": "d"}}],
            "pipeline_stages": [{"name": "s", "endpoint_id": endpoint["id"], "model": "sim-small",
                                 "user": "{{ input.text }}"}]
        })))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{e}");
    Fixture {
        admin,
        experiment: e["id"].as_str().unwrap().to_owned(),
    }
}

async fn upload(
    server: &TestServer,
    f: &Fixture,
    content_type: &str,
    query: &str,
    body: impl Into<reqwest::Body>,
) -> (StatusCode, Value) {
    let res = TestServer::client()
        .post(format!(
            "{}/api/v1/experiments/{}/samples{query}",
            server.url, f.experiment
        ))
        .bearer_auth(&f.admin)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn items(server: &TestServer, f: &Fixture) -> Value {
    let (s, e) = server
        .get(
            &format!("/api/v1/experiments/{}", f.experiment),
            Some(&f.admin),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    e["items"].clone()
}

/// `rows` CSV rows of about `width` bytes each (a long `doc` field), with an id column.
fn csv(rows: usize, width: usize) -> String {
    let clause = "The supplier delivers the goods within thirty days of the order. ";
    let filler: String = clause.repeat(width / clause.len() + 1);
    let mut out = String::from("id,text,doc,reference,split\n");
    for i in 0..rows {
        let split = if i % 10 == 0 { "test" } else { "train" };
        writeln!(
            out,
            "row-{i},Text number {i},\"{}\",ref {i},{split}",
            &filler[..width]
        )
        .unwrap();
    }
    out
}

#[tokio::test]
async fn a_30_mb_file_is_streamed_in_and_read_back_in_pages() {
    for server in TestServer::all().await {
        let f = fixture(&server).await;
        let body = csv(10_000, 3_000);
        assert!(body.len() > 30_000_000, "{}", body.len());
        let (s, report) = upload(&server, &f, "text/csv", "", body).await;
        assert_eq!(s, StatusCode::OK, "{report}");
        assert_eq!(
            (&report["imported"], &report["skipped"]),
            (&json!(10_000), &json!(0))
        );
        assert_eq!(report["items"]["count"], 10_000);
        assert_eq!(report["items"]["fields"], json!(["doc", "text"]));
        let (_, page) = server
            .get(
                &format!(
                    "/api/v1/experiments/{}/items?offset=9998&limit=5",
                    f.experiment
                ),
                Some(&f.admin),
            )
            .await;
        assert_eq!(page["total"], 10_000);
        let last = &page["items"].as_array().unwrap()[1];
        assert_eq!(
            (
                &last["id"],
                &last["input"]["text"],
                &last["reference"],
                &last["split"]
            ),
            (
                &json!("row-9999"),
                &json!("Text number 9999"),
                &json!("ref 9999"),
                &json!("train")
            )
        );
        assert_eq!(last["input"]["doc"].as_str().unwrap().len(), 3_000);
        let (_, test) = server
            .get(
                &format!(
                    "/api/v1/experiments/{}/items?split=test&limit=1",
                    f.experiment
                ),
                Some(&f.admin),
            )
            .await;
        assert_eq!(test["total"], 1_000);
        // The experiment itself stays small.
        let raw = TestServer::client()
            .get(format!(
                "{}/api/v1/experiments/{}",
                server.url, f.experiment
            ))
            .bearer_auth(&f.admin)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(raw.len() < 4_000, "{} bytes", raw.len());
        server.stop().await;
    }
}

#[tokio::test]
async fn bad_lines_are_listed_and_a_refused_file_writes_nothing() {
    for server in TestServer::all().await {
        let f = fixture(&server).await;
        let before = items(&server, &f).await;
        let mut body = String::from("text,doc\n");
        for i in 0..300 {
            if i % 2 == 1 {
                writeln!(body, "only one field {i}").unwrap();
            } else {
                writeln!(body, "text {i},doc {i}").unwrap();
            }
        }
        let got = upload(&server, &f, "text/csv", "", body.clone()).await;
        assert_error(&got, StatusCode::UNPROCESSABLE_ENTITY, Some("content"));
        let error = &got.1["error"];
        assert_eq!(error["error_count"], 150, "{error}");
        let lines = error["lines"].as_array().unwrap();
        assert_eq!(lines.len(), 100);
        assert_eq!(
            lines[0],
            json!({"line": 3, "message": "expected 2 fields, found 1"})
        );
        assert!(
            error["message"]
                .as_str()
                .unwrap()
                .ends_with("(and 149 more bad lines)"),
            "{error}"
        );
        assert_eq!(items(&server, &f).await, before, "nothing written");

        // With skip_invalid the good lines are kept and the bad ones listed.
        let (s, report) = upload(
            &server,
            &f,
            "text/csv",
            "?skip_invalid=true&append=true",
            body,
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{report}");
        assert_eq!(
            (&report["imported"], &report["skipped"]),
            (&json!(150), &json!(150))
        );
        assert_eq!(report["errors"].as_array().unwrap().len(), 100);
        assert_eq!(
            report["items"]["count"], 151,
            "appended to the one there: {report}"
        );

        // A JSON array upload, an id already taken when appending, a duplicate id in the file.
        let array = json!([{"id": "seed", "text": "again"}, {"id": "x", "text": "a"}, {"id": "x", "text": "b"}]);
        let got = upload(
            &server,
            &f,
            "application/json",
            "?append=true",
            array.to_string(),
        )
        .await;
        assert_error(&got, StatusCode::UNPROCESSABLE_ENTITY, Some("content"));
        let lines = got.1["error"]["lines"].as_array().unwrap().clone();
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(
            lines[0]["message"]
                .as_str()
                .unwrap()
                .contains("already exists")
        );
        assert!(
            lines[1]["message"]
                .as_str()
                .unwrap()
                .contains("is used by line 1")
        );
        let (s, report) = upload(
            &server,
            &f,
            "application/json",
            "",
            json!([{"text": "fresh", "tags": ["a", "b"]}]).to_string(),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{report}");
        assert_eq!(report["items"]["count"], 1, "replaced");

        // Templates must keep working: a file without `text` is refused.
        let got = upload(
            &server,
            &f,
            "application/x-ndjson",
            "",
            "{\"doc\": \"x\"}\n",
        )
        .await;
        assert_error(&got, StatusCode::UNPROCESSABLE_ENTITY, Some("content"));
        // Unknown media types and unknown query parameters are refused.
        let got = upload(&server, &f, "text/plain", "", "x").await;
        assert_eq!(got.0, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        let got = upload(&server, &f, "text/csv", "?appendd=true", "text\nx\n").await;
        assert_error(&got, StatusCode::BAD_REQUEST, Some("appendd"));
        // A guest may read the items but not import any.
        let guest = server.user_token(&f.admin, "reader", "guest").await;
        let res = TestServer::client()
            .post(format!(
                "{}/api/v1/experiments/{}/samples",
                server.url, f.experiment
            ))
            .bearer_auth(&guest)
            .header("content-type", "text/csv")
            .body("text\nx\n")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
        let (s, _) = server
            .get(
                &format!("/api/v1/experiments/{}/items", f.experiment),
                Some(&guest),
            )
            .await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(items(&server, &f).await["count"], 1);
        server.stop().await;
    }
}

#[tokio::test]
async fn uploads_past_max_upload_mb_are_refused_and_other_bodies_keep_2_mib() {
    for database in TestDatabase::all().await {
        let server =
            TestServer::start_with(database, &["--seed-demo", "false", "--max-upload-mb", "1"])
                .await;
        let f = fixture(&server).await;
        let got = upload(&server, &f, "text/csv", "", csv(1_000, 1_100)).await;
        assert_error(&got, StatusCode::PAYLOAD_TOO_LARGE, Some("body"));
        assert_eq!(items(&server, &f).await["count"], 1);
        let (s, _) = upload(&server, &f, "text/csv", "", csv(100, 1_000)).await;
        assert_eq!(s, StatusCode::OK);
        server.stop().await;
    }
    for server in TestServer::all().await {
        let f = fixture(&server).await;
        // The JSON wrapper and every other JSON body stay at 2 MiB.
        let big = json!({"format": "csv", "content": csv(3_000, 1_000)}).to_string();
        let got = upload(&server, &f, "application/json", "", big).await;
        assert_eq!(got.0, StatusCode::PAYLOAD_TOO_LARGE, "{got:?}");
        let items: Vec<Value> = (0..3_000)
            .map(|i| json!({"input": {"text": format!("{i} {}", "x".repeat(1_000))}}))
            .collect();
        let got = server
            .call(
                Method::POST,
                &format!("/api/v1/experiments/{}/items", f.experiment),
                Some(&f.admin),
                Some(json!({"items": items})),
            )
            .await;
        assert_eq!(got.0, StatusCode::PAYLOAD_TOO_LARGE, "{:?}", got.0);
        server.stop().await;
    }
}

#[tokio::test]
async fn a_named_dataset_is_shared_by_two_experiments_at_their_own_versions() {
    for server in TestServer::all().await {
        let admin = server.setup_admin().await;
        let post = |path: String, body: Value| {
            let (server, admin) = (&server, &admin);
            async move {
                server
                    .call(Method::POST, &path, Some(admin), Some(body))
                    .await
            }
        };
        let (_, endpoint) = post(
            "/api/v1/endpoints".to_owned(),
            json!({"name": "sim", "kind": "simulated"}),
        )
        .await;
        let (_, project) = post("/api/v1/projects".to_owned(), json!({"name": "p"})).await;
        let docs: Vec<Value> = (0..3)
            .map(|i| json!({"id": format!("doc-{i}"), "input": {"text": format!("Document {i}")}}))
            .collect();
        let (s, dataset) = post(
            "/api/v1/datasets".to_owned(),
            json!({"project_id": project["id"], "name": "Contracts", "sample_data": docs}),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{dataset}");
        assert_eq!(
            (&dataset["version"], &dataset["count"]),
            (&json!(1), &json!(3))
        );
        let id = dataset["id"].as_str().unwrap().to_owned();
        let got = post(
            "/api/v1/datasets".to_owned(),
            json!({"project_id": project["id"], "name": "Contracts"}),
        )
        .await;
        assert_error(&got, StatusCode::CONFLICT, Some("name"));

        let experiment = |name: &str, user: &str| {
            json!({"project_id": project["id"], "name": name, "dataset_id": id,
                   "pipeline_stages": [{"name": "s", "endpoint_id": endpoint["id"], "model": "sim-small", "user": user}]})
        };
        let (s, a) = post(
            "/api/v1/experiments".to_owned(),
            experiment("A", "Summarise: {{ input.text }}"),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{a}");
        // B names the dataset instead of giving its id.
        let mut by_name = experiment("B", "List parties: {{ input.text }}");
        by_name.as_object_mut().unwrap().remove("dataset_id");
        by_name["dataset"] = json!("Contracts");
        let (_, b) = post("/api/v1/experiments".to_owned(), by_name.clone()).await;
        by_name["dataset"] = json!("Nope");
        by_name["name"] = json!("B2");
        let got = post("/api/v1/experiments".to_owned(), by_name).await;
        assert_error(&got, StatusCode::UNPROCESSABLE_ENTITY, Some("dataset"));
        for e in [&a, &b] {
            assert_eq!(
                (
                    &e["items"]["dataset_name"],
                    &e["items"]["count"],
                    &e["items"]["version"]
                ),
                (&json!("Contracts"), &json!(3), &json!(1)),
                "{e}"
            );
        }
        let (a, b) = (
            a["id"].as_str().unwrap().to_owned(),
            b["id"].as_str().unwrap().to_owned(),
        );
        let both = post("/api/v1/experiments".to_owned(), json!({"project_id": project["id"], "name": "C", "dataset_id": id,
            "sample_data": [{"input": {"text": "x"}}],
            "pipeline_stages": [{"name": "s", "endpoint_id": endpoint["id"], "model": "sim-small", "user": "u"}]})).await;
        assert_error(&both, StatusCode::UNPROCESSABLE_ENTITY, Some("sample_data"));
        for e in [&a, &b] {
            let (s, run) = post("/api/v1/runs".to_owned(), json!({"experiment_id": e})).await;
            assert_eq!(
                (s, &run["completed"]),
                (StatusCode::CREATED, &json!(3)),
                "{run}"
            );
        }

        // A new version of the dataset: the experiments stay where they are until moved.
        let res = TestServer::client()
            .post(format!(
                "{}/api/v1/datasets/{id}/samples?append=true",
                server.url
            ))
            .bearer_auth(&admin)
            .header("content-type", "application/x-ndjson")
            .body("{\"id\": \"doc-3\", \"text\": \"Document 3\"}\n")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let (_, e) = server
            .get(&format!("/api/v1/experiments/{a}"), Some(&admin))
            .await;
        assert_eq!(
            (
                &e["items"]["version"],
                &e["items"]["latest_version"],
                &e["items"]["count"]
            ),
            (&json!(1), &json!(2), &json!(3)),
            "{e}"
        );
        let got = server
            .call(
                Method::DELETE,
                &format!("/api/v1/experiments/{b}/items/doc-0"),
                Some(&admin),
                None,
            )
            .await;
        assert_error(&got, StatusCode::CONFLICT, Some("item"));
        let (s, e) = server
            .call(
                Method::PUT,
                &format!("/api/v1/experiments/{a}"),
                Some(&admin),
                Some(json!({"dataset_version": 2})),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{e}");
        assert_eq!(
            (&e["items"]["version"], &e["items"]["count"]),
            (&json!(2), &json!(4))
        );
        let got = server
            .call(
                Method::PUT,
                &format!("/api/v1/experiments/{a}"),
                Some(&admin),
                Some(json!({"dataset_version": 9})),
            )
            .await;
        assert_error(
            &got,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("dataset_version"),
        );
        let (_, versions) = server
            .get(&format!("/api/v1/datasets/{id}/versions"), Some(&admin))
            .await;
        assert_eq!(
            versions,
            json!([
                {"version": 2, "count": 4, "experiments": 1, "created_at": versions[0]["created_at"]},
                {"version": 1, "count": 3, "experiments": 1, "created_at": versions[1]["created_at"]},
            ])
        );
        let (_, old) = server
            .get(
                &format!("/api/v1/datasets/{id}/items?version=1&limit=10"),
                Some(&admin),
            )
            .await;
        assert_eq!(old["total"], 3, "old versions are kept: {old}");

        // Forking keeps the dataset version.
        let (_, runs) = server
            .get(
                &format!("/api/v1/experiments/{b}/runs?limit=1"),
                Some(&admin),
            )
            .await;
        let (s, fork) = post(
            format!("/api/v1/experiments/{b}/fork"),
            json!({"run_id": runs["runs"][0]["id"]}),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{fork}");
        assert_eq!(
            (&fork["items"]["dataset_id"], &fork["items"]["version"]),
            (&json!(id), &json!(1))
        );

        // In use: not deleted. Unused: deleted with its versions.
        let got = server
            .call(
                Method::DELETE,
                &format!("/api/v1/datasets/{id}"),
                Some(&admin),
                None,
            )
            .await;
        assert_error(&got, StatusCode::CONFLICT, Some("dataset"));
        for e in [&a, &b, &fork["id"].as_str().unwrap().to_owned()] {
            let (s, _) = server
                .call(
                    Method::DELETE,
                    &format!("/api/v1/experiments/{e}"),
                    Some(&admin),
                    None,
                )
                .await;
            assert_eq!(s, StatusCode::NO_CONTENT);
        }
        let (s, _) = server
            .call(
                Method::DELETE,
                &format!("/api/v1/datasets/{id}"),
                Some(&admin),
                None,
            )
            .await;
        assert_eq!(s, StatusCode::NO_CONTENT);

        // An experiment's own items can become a shared dataset.
        let (_, own) = post("/api/v1/experiments".to_owned(), json!({"project_id": project["id"], "name": "Own",
            "sample_data": [{"input": {"text": "mine"}}],
            "pipeline_stages": [{"name": "s", "endpoint_id": endpoint["id"], "model": "sim-small", "user": "{{ input.text }}"}]})).await;
        let (s, shared) = post(
            "/api/v1/datasets".to_owned(),
            json!({"project_id": project["id"], "name": "Mine", "from_experiment": own["id"]}),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{shared}");
        assert_eq!(
            (&shared["id"], &shared["experiments"], &shared["count"]),
            (&own["items"]["dataset_id"], &json!(1), &json!(1))
        );
        let (_, listed) = server
            .get(
                &format!(
                    "/api/v1/datasets?project_id={}",
                    project["id"].as_str().unwrap()
                ),
                Some(&admin),
            )
            .await;
        assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
        server.stop().await;
    }
}

#[tokio::test]
async fn long_inputs_render_whole_and_their_runs_are_cached_by_prompt() {
    for server in TestServer::all().await {
        let f = fixture(&server).await;
        let long = "word ".repeat(20_000);
        let (s, report) = upload(
            &server,
            &f,
            "application/x-ndjson",
            "",
            format!("{}\n", json!({"id": "long", "text": long, "doc": "d"})),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{report}");
        let run = || async {
            let (s, batch) = server
                .call(
                    Method::POST,
                    "/api/v1/runs",
                    Some(&f.admin),
                    Some(json!({"experiment_id": f.experiment})),
                )
                .await;
            assert_eq!(s, StatusCode::CREATED, "{batch}");
            batch
        };
        let first = run().await;
        assert_eq!(first["completed"], 1, "{first}");
        let (_, detail) = server
            .get(
                &format!("/api/v1/runs/{}", first["runs"][0]["id"].as_str().unwrap()),
                Some(&f.admin),
            )
            .await;
        let sent = detail["stages"][0]["prompt_sent"].as_str().unwrap();
        assert!(
            sent.len() >= 100_000,
            "the whole input was rendered: {}",
            sent.len()
        );
        assert_eq!(
            run().await["cached"],
            1,
            "the same prompt is answered by the cache"
        );
        server.stop().await;
    }
}

#[tokio::test]
async fn two_runs_compare_word_by_word() {
    for server in TestServer::all().await {
        let f = fixture(&server).await;
        let run = |temperature: f64| {
            let (server, f) = (&server, &f);
            async move {
                let (s, batch) = server
                    .call(
                        Method::POST,
                        "/api/v1/runs",
                        Some(&f.admin),
                        Some(json!({"experiment_id": f.experiment,
                                    "stages": [{"model": if temperature > 0.5 { "sim-large" } else { "sim-small" },
                                                "params": {"temperature": temperature}}]})),
                    )
                    .await;
                assert_eq!(s, StatusCode::CREATED, "{batch}");
                batch["runs"][0]["id"].as_str().unwrap().to_owned()
            }
        };
        let (a, b) = (run(0.1).await, run(0.9).await);
        let (s, cmp) = server
            .get(&format!("/api/v1/runs/compare?a={a}&b={b}"), Some(&f.admin))
            .await;
        assert_eq!(s, StatusCode::OK, "{cmp}");
        assert_eq!((&cmp["a"]["id"], &cmp["b"]["id"]), (&json!(a), &json!(b)));
        let rebuilt = |keep: &str| -> String {
            cmp["output"]["spans"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|s| s["op"] == "same" || s["op"] == keep)
                .map(|s| s["text"].as_str().unwrap())
                .collect()
        };
        assert_eq!(
            rebuilt("removed"),
            cmp["a"]["stages"][0]["response_raw"].as_str().unwrap()
        );
        assert_eq!(
            rebuilt("added"),
            cmp["b"]["stages"][0]["response_raw"].as_str().unwrap()
        );
        let names: Vec<&str> = cmp["differences"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["model", "temperature"], "{cmp}");
        assert_eq!(cmp["prompts"].as_array().unwrap().len(), 1);
        let got = server
            .get(
                &format!("/api/v1/runs/compare?a={a}&b={}", uuid::Uuid::new_v4()),
                Some(&f.admin),
            )
            .await;
        assert_error(&got, StatusCode::UNPROCESSABLE_ENTITY, Some("b"));
        let got = server
            .get(&format!("/api/v1/runs/compare?a={a}"), Some(&f.admin))
            .await;
        assert_error(&got, StatusCode::BAD_REQUEST, Some("b"));
        server.stop().await;
    }
}
