//! The demo seeded on first boot: a simulated endpoint (no network, no key, no cost), a
//! project and a two-stage entity-extraction experiment with a parameter space that has a real
//! winner. Clearly labelled; deleting it is fine and it does not come back.

use chrono::Utc;
use serde_json::json;
use uuid::Uuid;

use super::core::Core;
use super::error::Result;
use super::providers::simulated;
use super::store::endpoints::{self, EndpointFields};
use super::store::{experiments, projects, settings};
use crate::types::{
    Dimension, EndpointKind, Experiment, ModelChoice, ParameterSpace, Params, PromptVariant,
    SampleItem, Stage, StageSpace,
};

pub const PROJECT_NAME: &str = "Demo: entity extraction (simulated)";
pub const ENDPOINT_NAME: &str = "Simulated (demo)";
pub const EXPERIMENT_NAME: &str = "Extract entities";

/// The demo's sentences (tests and benches use them too).
pub const TEXTS: [&str; 8] = [
    "Ada Lovelace wrote notes on the Analytical Engine in London in 1843.",
    "Marie Curie won Nobel prizes in 1903 and 1911 while working in Paris.",
    "Alan Turing published his paper on computable numbers at Cambridge in 1936.",
    "Grace Hopper joined the Navy and later built COBOL compilers at Remington Rand.",
    "Tim Berners-Lee proposed the World Wide Web at CERN near Geneva in 1989.",
    "Katherine Johnson computed trajectories for NASA missions including Apollo 11.",
    "Linus Torvalds released Linux from Helsinki in 1991 as a hobby project.",
    "Margaret Hamilton led software engineering for Apollo at MIT in 1969.",
];

/// The demo's scorers: closeness to the reference (embeddings of the simulated endpoint, and
/// word overlap), no filler words, and a thumbs rating for people to add.
pub fn scoring_config(endpoint_id: Uuid) -> serde_json::Value {
    json!([
        {"kind": "embedding_similarity", "name": "similarity", "endpoint_id": endpoint_id, "model": "sim-embed", "weight": 2.0},
        {"kind": "lexical_similarity", "name": "token_f1", "metric": "token_f1", "weight": 1.0},
        {"kind": "keywords", "name": "no_filler", "forbidden": ["perhaps", "notably", "various", "somewhat"],
         "whole_words": true, "mode": "fraction", "weight": 1.0},
        {"kind": "human_rating", "name": "thumbs", "scale": "thumbs", "weight": 1.0},
    ])
}

/// Brings a demo seeded by an earlier version up to date: its scoring config predates
/// scoring (an embedding scorer without an endpoint) and is replaced once.
pub async fn upgrade(core: &Core) -> Result<()> {
    let legacy = json!([{"kind": "embedding_similarity", "weight": 1.0}]);
    let Some(endpoint) = endpoints::get_by_name(&core.db, ENDPOINT_NAME).await? else {
        return Ok(());
    };
    for mut e in experiments::list(&core.db, None, 1000, 0).await? {
        if e.name == EXPERIMENT_NAME && e.scoring_config == legacy {
            e.scoring_config = scoring_config(endpoint.id);
            let (scorers, _) = crate::server::scoring::parse_lenient(&e.scoring_config);
            let names: Vec<String> = scorers.into_iter().map(|s| s.name).collect();
            experiments::update_scored(&core.db, &e, &[], Some(&names)).await?;
            // Its earlier runs are scored with the new scorers (cached calls only).
            crate::server::scoring::jobs::start(core, &e, None, false, None).await?;
            tracing::info!("updated the demo experiment's scorers; re-scoring its runs");
        }
    }
    Ok(())
}

/// Seeds the demo once per database (a marker in `settings` makes concurrent starts safe).
pub async fn seed_once(core: &Core) -> Result<bool> {
    if !settings::claim_marker(&core.db, "demo_seeded").await? {
        return Ok(false);
    }
    let endpoint = match endpoints::get_by_name(&core.db, ENDPOINT_NAME).await? {
        Some(row) => row,
        None => {
            endpoints::insert(
                &core.db,
                &EndpointFields {
                    name: ENDPOINT_NAME,
                    kind: EndpointKind::Simulated,
                    base_url: "",
                    api_key_enc: None,
                    api_key_hint: None,
                    options: &json!({"latency_ms": 20, "jitter_ms": 30}),
                    limits: Default::default(),
                    timeout_ms: 30_000,
                },
            )
            .await?
        }
    };
    let project = projects::insert(
        &core.db,
        PROJECT_NAME,
        "A ready-made experiment on the built-in simulated model: no API key, no network, no cost. \
         Delete it whenever you like.",
        "## About this demo\n\nThe simulated model extracts capitalised names and numbers. Its answers get \
         better with a larger model, a temperature near 0.25 and a prompt that asks for *only* a \
         comma-separated list, so a sweep has a real winner.",
        None,
    )
    .await?;
    let now = Utc::now();
    let sample_data: Vec<SampleItem> = TEXTS
        .iter()
        .enumerate()
        .map(|(i, text)| SampleItem {
            id: Some(format!("demo-{}", i + 1)),
            input: [("text".to_owned(), json!(text))].into(),
            reference: Some(simulated::ideal_answer(text).join(", ")),
            ..SampleItem::default()
        })
        .collect();
    let temperatures =
        |values: &[f64]| Dimension::Values(values.iter().map(|t| json!(t)).collect());
    let experiment = Experiment {
        id: Uuid::new_v4(),
        project_id: project.id,
        name: EXPERIMENT_NAME.to_owned(),
        description: "Stage 1 extracts entities from a sentence; stage 2 cleans the list up.".to_owned(),
        items: crate::types::ItemsSummary {
            dataset_id: Uuid::new_v4(),
            ..Default::default()
        },
        pipeline_stages: vec![
            Stage {
                name: "extract".to_owned(),
                endpoint_id: endpoint.id,
                model: "sim-medium".to_owned(),
                system: "You extract named entities: people, places, organisations and numbers.".to_owned(),
                user: "Extract the entities from this text.\n\n{{ input.text }}".to_owned(),
                params: Params { temperature: Some(0.7), max_tokens: Some(256), ..Params::default() },
            },
            Stage {
                name: "clean up".to_owned(),
                endpoint_id: endpoint.id,
                model: "sim-large".to_owned(),
                system: "Return only a comma-separated list.".to_owned(),
                user: "Keep only the entities, in order.\n\n{{ stages[0].output }}".to_owned(),
                params: Params { temperature: Some(0.2), max_tokens: Some(256), ..Params::default() },
            },
        ],
        parameter_space: ParameterSpace {
            stages: vec![
                StageSpace {
                    prompts: vec![
                        PromptVariant {
                            name: "plain".to_owned(),
                            system: Some("You extract named entities: people, places, organisations and numbers.".to_owned()),
                            user: None,
                        },
                        PromptVariant {
                            name: "terse".to_owned(),
                            system: Some("Return only the entities, as a comma-separated list.".to_owned()),
                            user: None,
                        },
                        PromptVariant {
                            name: "reasoning".to_owned(),
                            system: Some("Think step by step about each word before you answer.".to_owned()),
                            user: None,
                        },
                    ],
                    models: ["sim-large", "sim-medium", "sim-small"]
                        .iter()
                        .map(|m| ModelChoice { endpoint_id: None, model: (*m).to_owned() })
                        .collect(),
                    params: [("temperature".to_owned(), temperatures(&[0.2, 0.5, 0.9]))].into(),
                },
                StageSpace {
                    prompts: Vec::new(),
                    models: Vec::new(),
                    params: [("temperature".to_owned(), temperatures(&[0.0, 0.7]))].into(),
                },
            ],
        },
        scoring_config: scoring_config(endpoint.id),
        status: "draft".to_owned(),
        created_at: now,
        updated_at: now,
    };
    experiments::insert(&core.db, &experiment, &[], true).await?;
    crate::server::datasets::fill_new(core, &experiment, sample_data).await?;
    tracing::info!(
        project = PROJECT_NAME,
        "seeded the demo project (simulated, no API key needed)"
    );
    Ok(true)
}
