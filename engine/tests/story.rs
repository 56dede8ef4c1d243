//! One story through the engine's storage and operations, run on SQLite and on PostgreSQL
//! (`TEST_DATABASE_URL`), each on a fresh database.

use chrono::{Duration, Utc};
use engine::testing::TestDatabase;
use engine::types::{NewApiKey, NewProject, NewUser, ProjectUpdate, Role, SettingsUpdate};
use engine::{Actor, AuthVia, Core, Db, Error, Secrets};
use uuid::Uuid;

fn secrets() -> Secrets {
    Secrets::new(
        b"test-secret-test-secret-test-secret!",
        Some("static-key-0123456789-0123456789-abcdef"),
        b"story encryption key",
    )
}

#[tokio::test]
async fn the_engine_story_holds_on_every_backend() {
    for database in TestDatabase::all().await {
        eprintln!("backend: {:?}", database.kind);
        story(&database).await;
    }
}

async fn story(database: &TestDatabase) {
    let db = database.connect().await;
    db.migrate().await.expect("migrations are idempotent");
    let core = Core::new(db.clone(), secrets());

    // First boot: setup once, then never again.
    assert!(engine::auth::needs_setup(&core).await.unwrap());
    let bad = engine::auth::setup_admin(&core, "admin", "short")
        .await
        .unwrap_err();
    assert_eq!(bad.field(), Some("password"));
    let admin_user = engine::auth::setup_admin(&core, "Admin", "correct horse battery")
        .await
        .unwrap();
    assert_eq!(admin_user.username, "admin");
    assert_eq!(admin_user.role, Role::Admin);
    assert!(matches!(
        engine::auth::setup_admin(&core, "other", "another password").await,
        Err(Error::Conflict(_))
    ));
    assert!(!engine::auth::needs_setup(&core).await.unwrap());

    // Login, tokens, and what a token is worth after a password reset.
    let row = engine::auth::login(&core, "ADMIN", "correct horse battery")
        .await
        .unwrap();
    let token = engine::auth::issue_token(&core, &row).await.unwrap();
    let actor = engine::auth::authenticate_bearer(&core, &token.token)
        .await
        .unwrap();
    assert_eq!((actor.role, actor.via.clone()), (Role::Admin, AuthVia::Jwt));
    let mut tampered = token.token.clone();
    tampered.push('x');
    assert!(matches!(
        engine::auth::authenticate_bearer(&core, &tampered).await,
        Err(Error::Unauthenticated)
    ));
    let static_actor =
        engine::auth::authenticate_bearer(&core, "static-key-0123456789-0123456789-abcdef")
            .await
            .unwrap();
    assert_eq!(
        (static_actor.role, static_actor.via),
        (Role::Admin, AuthVia::StaticApiKey)
    );

    // Repeated failures lock the account; the right password does not help while locked.
    for _ in 0..engine::auth::FREE_ATTEMPTS {
        assert!(matches!(
            engine::auth::login(&core, "admin", "wrong password").await,
            Err(Error::BadCredentials)
        ));
    }
    match engine::auth::login(&core, "admin", "correct horse battery").await {
        Err(Error::Locked { retry_after_secs }) => assert!((1..=30).contains(&retry_after_secs)),
        other => panic!("expected a lock, got {other:?}"),
    }
    assert!(matches!(
        engine::auth::login(&core, "nobody", "whatever pass").await,
        Err(Error::BadCredentials)
    ));
    engine::admin::reset_password(&core, "admin", "a new long password")
        .await
        .unwrap();
    let row = engine::auth::login(&core, "admin", "a new long password")
        .await
        .expect("reset lifts the lock");
    assert!(
        matches!(
            engine::auth::authenticate_bearer(&core, &token.token).await,
            Err(Error::Unauthenticated)
        ),
        "a password reset signs out every old token"
    );
    let admin = engine::auth::session_actor(&core, row.id, row.session_version, AuthVia::Session)
        .await
        .unwrap()
        .unwrap();
    assert!(
        engine::auth::session_actor(&core, row.id, row.session_version - 1, AuthVia::Session)
            .await
            .unwrap()
            .is_none()
    );

    // Parallel guesses serialize on the account: only the free attempts reach the password check.
    let target = engine::admin::create_user(
        &core,
        &admin,
        NewUser {
            username: "target".into(),
            password: "target password".into(),
            role: Role::Member,
        },
    )
    .await
    .unwrap();
    let mut guesses = tokio::task::JoinSet::new();
    for i in 0..12 {
        let core = core.clone();
        guesses.spawn(async move {
            engine::auth::login(&core, "target", &format!("guess number {i}")).await
        });
    }
    let (mut checked, mut locked) = (0, 0);
    while let Some(result) = guesses.join_next().await {
        match result.unwrap() {
            Err(Error::BadCredentials) => checked += 1,
            Err(Error::Locked { .. }) => locked += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    // Each guess reads the lock in its turn at the hasher (one per core): once the free
    // attempts have failed, at most one guess per core was already past the lock.
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get()) as i64;
    assert!(
        (engine::auth::FREE_ATTEMPTS..=engine::auth::FREE_ATTEMPTS + cores).contains(&checked),
        "{checked} guesses checked"
    );
    assert_eq!(checked + locked, 12);
    engine::admin::delete_user(&core, &admin, target.id)
        .await
        .unwrap();

    // Users: a member writes but does not administer; a guest only reads.
    let member_user = engine::admin::create_user(
        &core,
        &admin,
        NewUser {
            username: "mia".into(),
            password: "member password".into(),
            role: Role::Member,
        },
    )
    .await
    .unwrap();
    let dup = engine::admin::create_user(
        &core,
        &admin,
        NewUser {
            username: "MIA".into(),
            password: "member password".into(),
            role: Role::Member,
        },
    )
    .await
    .unwrap_err();
    assert!(matches!(dup, Error::Conflict(ref f) if f.field == "username"));
    let member = actor_for(&core, member_user.id).await;
    assert!(matches!(
        engine::admin::get_settings(&core, &member).await,
        Err(Error::Forbidden(_))
    ));
    assert!(matches!(
        engine::admin::delete_user(&core, &admin, admin_user.id).await,
        Err(Error::Invalid(_))
    ));
    assert!(matches!(
        engine::admin::update_user(&core, &admin, admin_user.id, engine::types::UserUpdate { role: Some(Role::Member), password: None }).await,
        Err(Error::Invalid(ref f)) if f.field == "role"
    ));

    // API keys: shown once, stored hashed, revocable.
    let created = engine::admin::create_api_key(
        &core,
        &admin,
        NewApiKey {
            name: "ci".into(),
            role: Role::Member,
        },
    )
    .await
    .unwrap();
    assert!(created.key.starts_with("pl_") && created.key.starts_with(&created.api_key.prefix));
    let via_key = engine::auth::authenticate_bearer(&core, &created.key)
        .await
        .unwrap();
    assert_eq!(
        (via_key.role, via_key.via.clone()),
        (Role::Member, AuthVia::ApiKey(created.api_key.id))
    );
    let listed = engine::admin::list_api_keys(&core, &admin).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].last_used_at.is_some(), "use is recorded");
    assert!(
        !format!("{listed:?}").contains(&created.key),
        "a listed key never carries its secret"
    );
    engine::admin::revoke_api_key(&core, &admin, created.api_key.id)
        .await
        .unwrap();
    assert!(matches!(
        engine::auth::authenticate_bearer(&core, &created.key).await,
        Err(Error::Unauthenticated)
    ));
    assert!(matches!(
        engine::admin::revoke_api_key(&core, &admin, created.api_key.id).await,
        Err(Error::NotFound(_))
    ));

    // Settings: validated as a whole, nothing written on error; guests follow the setting.
    assert!(
        engine::auth::anonymous_actor(&core)
            .await
            .unwrap()
            .is_none()
    );
    let refused = engine::admin::update_settings(
        &core,
        &admin,
        SettingsUpdate {
            allow_guest_access: Some(true),
            token_ttl_minutes: Some(1),
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert_eq!(refused.field(), Some("token_ttl_minutes"));
    assert!(
        !engine::admin::get_settings(&core, &admin)
            .await
            .unwrap()
            .allow_guest_access,
        "nothing was written"
    );
    let s = engine::admin::update_settings(
        &core,
        &admin,
        SettingsUpdate {
            allow_guest_access: Some(true),
            default_model: Some(Some("gpt-4o-mini".into())),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert!(s.allow_guest_access);
    let guest = engine::auth::anonymous_actor(&core)
        .await
        .unwrap()
        .expect("guests allowed");
    assert_eq!(guest.role, Role::Guest);
    let s = engine::admin::update_settings(
        &core,
        &admin,
        SettingsUpdate {
            default_model: Some(None),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(s.default_model, None, "null clears");
    assert!(s.allow_guest_access, "absent fields are kept");

    // Projects.
    let alpha = engine::projects::create_project(
        &core,
        &member,
        NewProject {
            name: "  Alpha  ".into(),
            description: "first".into(),
            notes: "# Notes\n- one".into(),
        },
    )
    .await
    .unwrap();
    assert_eq!(alpha.name, "Alpha");
    assert_eq!(alpha.owner_id, Some(member_user.id));
    let taken = engine::projects::create_project(
        &core,
        &member,
        NewProject {
            name: "Alpha".into(),
            description: String::new(),
            notes: String::new(),
        },
    )
    .await
    .unwrap_err();
    assert!(matches!(taken, Error::Conflict(ref f) if f.field == "name"));
    assert!(matches!(
        engine::projects::create_project(
            &core,
            &guest,
            NewProject {
                name: "G".into(),
                description: String::new(),
                notes: String::new()
            }
        )
        .await,
        Err(Error::Forbidden(_))
    ));
    let beta = engine::projects::create_project(
        &core,
        &admin,
        NewProject {
            name: "Beta".into(),
            description: String::new(),
            notes: String::new(),
        },
    )
    .await
    .unwrap();
    let renamed = engine::projects::update_project(
        &core,
        &member,
        alpha.id,
        ProjectUpdate {
            name: Some("Alpha 2".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(
        (renamed.name.as_str(), renamed.notes.as_str()),
        ("Alpha 2", "# Notes\n- one")
    );
    assert!(renamed.updated_at >= alpha.updated_at);
    let clash = engine::projects::update_project(
        &core,
        &member,
        alpha.id,
        ProjectUpdate {
            name: Some("Beta".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert_eq!(clash.field(), Some("name"));
    let too_long = engine::projects::update_project(
        &core,
        &member,
        alpha.id,
        ProjectUpdate {
            description: Some("x".repeat(10_001)),
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert_eq!(too_long.field(), Some("description"));
    assert_eq!(
        engine::projects::get_project(&core, &guest, alpha.id)
            .await
            .unwrap()
            .project
            .name,
        "Alpha 2",
        "failed updates change nothing"
    );
    let page = engine::projects::list_projects(&core, &guest, 1, 0)
        .await
        .unwrap();
    assert_eq!(page.len(), 1);
    assert_eq!(
        engine::projects::list_projects(&core, &guest, 10, 0)
            .await
            .unwrap()
            .len(),
        2
    );
    assert!(matches!(
        engine::projects::list_projects(&core, &guest, 0, 0).await,
        Err(Error::Invalid(_))
    ));

    // Deleting a project takes its experiments, runs, stage results and scores with it.
    let (experiment, run) = seed_experiment(&db, alpha.id).await;
    let detail = engine::projects::get_project(&core, &member, alpha.id)
        .await
        .unwrap();
    assert_eq!(detail.project.experiment_count, 1);
    assert_eq!(detail.experiments[0].run_count, 1);
    let stats = engine::admin::get_stats(&core, &admin).await.unwrap();
    assert_eq!(
        (
            stats.projects,
            stats.experiments,
            stats.runs.total,
            stats.runs.completed
        ),
        (2, 1, 1, 1)
    );
    assert_eq!((stats.tokens_in, stats.tokens_out), (120, 30));
    assert_eq!(stats.cache_hit_rate, None, "no cache lookups yet");
    assert_eq!(stats.database, database.kind.as_str());
    engine::projects::delete_project(&core, &member, alpha.id)
        .await
        .unwrap();
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM experiments WHERE id = $1",
            experiment
        )
        .await,
        0
    );
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM runs WHERE id = $1", run).await,
        0
    );
    assert_eq!(
        count(
            &db,
            "SELECT COUNT(*) FROM stage_results WHERE run_id = $1",
            run
        )
        .await,
        0
    );
    assert_eq!(
        count(&db, "SELECT COUNT(*) FROM scores WHERE run_id = $1", run).await,
        0
    );
    assert!(matches!(
        engine::projects::delete_project(&core, &member, alpha.id).await,
        Err(Error::NotFound(_))
    ));
    assert!(
        engine::projects::get_project(&core, &member, beta.id)
            .await
            .is_ok()
    );

    // Sessions expire.
    let now = Utc::now();
    use engine::store::sessions;
    assert!(
        sessions::create(&db, "s1", "{}", now + Duration::hours(1))
            .await
            .unwrap()
    );
    assert!(
        !sessions::create(&db, "s1", "{}", now + Duration::hours(1))
            .await
            .unwrap(),
        "ids are unique"
    );
    sessions::save(&db, "s2", "{\"a\":1}", now - Duration::seconds(1))
        .await
        .unwrap();
    assert_eq!(
        sessions::load(&db, "s1", now)
            .await
            .unwrap()
            .map(|(d, _)| d),
        Some("{}".to_owned())
    );
    assert!(
        sessions::load(&db, "s2", now).await.unwrap().is_none(),
        "expired sessions do not load"
    );
    assert_eq!(sessions::delete_expired(&db, now).await.unwrap(), 1);
    sessions::delete(&db, "s1").await.unwrap();
    assert!(sessions::load(&db, "s1", now).await.unwrap().is_none());

    db.close().await;
}

async fn actor_for(core: &Core, id: Uuid) -> Actor {
    let row = engine::store::users::get(&core.db, id)
        .await
        .unwrap()
        .unwrap();
    engine::auth::session_actor(core, id, row.session_version, AuthVia::Session)
        .await
        .unwrap()
        .unwrap()
}

async fn count(db: &Db, sql: &'static str, id: Uuid) -> i64 {
    match db {
        Db::Sqlite(p) => sqlx::query_scalar(sql).bind(id).fetch_one(p).await.unwrap(),
        Db::Postgres(p) => sqlx::query_scalar(sql).bind(id).fetch_one(p).await.unwrap(),
    }
}

/// An experiment with one finished, scored run, inserted directly so the cascade and stats
/// can be checked.
async fn seed_experiment(db: &Db, project_id: Uuid) -> (Uuid, Uuid) {
    let (experiment, run, now) = (Uuid::new_v4(), Uuid::new_v4(), Utc::now());
    macro_rules! seed {
        ($p:expr) => {{
            sqlx::query("INSERT INTO experiments (id, project_id, name, created_at, updated_at) VALUES ($1, $2, 'e', $3, $3)")
                .bind(experiment).bind(project_id).bind(now).execute($p).await.unwrap();
            sqlx::query("INSERT INTO runs (id, experiment_id, config_hash, config, status, tokens_in, tokens_out, created_at) \
                         VALUES ($1, $2, 'h', $3, 'completed', 120, 30, $4)")
                .bind(run).bind(experiment).bind(sqlx::types::Json(serde_json::json!({"model": "m"}))).bind(now)
                .execute($p).await.unwrap();
            sqlx::query("INSERT INTO stage_results (id, run_id, stage_index, prompt_sent, response_raw, model_used, created_at) \
                         VALUES ($1, $2, 0, 'p', 'r', 'm', $3)")
                .bind(Uuid::new_v4()).bind(run).bind(now).execute($p).await.unwrap();
            sqlx::query("INSERT INTO scores (run_id, scorer_name, experiment_id, config_key, fingerprint, value, created_at) \
                         VALUES ($1, 'length', $2, '', 'f', 0.5, $3)")
                .bind(run).bind(experiment).bind(now).execute($p).await.unwrap();
        }};
    }
    match db {
        Db::Sqlite(p) => seed!(p),
        Db::Postgres(p) => seed!(p),
    }
    (experiment, run)
}
