//! What the criterion benches share: the demo winery installed, and Dana's identity in it.

use chrono::Utc;
use libero::server::{
    clients::{self, Installation},
    db::Db,
    sessions::{AuthSession, Theme, hash_token},
};

/// Installs the demo winery (`demo-winery`).
pub async fn install_demo(db: &Db) -> clients::Client {
    let installation = Installation {
        tenant_id: "demo-winery".into(),
        org_name: Some("Demo Winery".into()),
        org_contact: None,
        user_id: None,
        user_email: None,
        install_data: serde_json::json!({}),
    };
    clients::install(db, &installation, &Default::default()).await.expect("install")
}

/// Dana, the demo winery's owner, signed in now for 8 hours.
pub fn identity(client: &clients::Client) -> AuthSession {
    let now = Utc::now();
    AuthSession {
        client_id: client.id,
        tenant_id: client.tenant_id.clone(),
        user_id: "c7-user-dana".into(),
        user_name: Some("Dana Owner".into()),
        user_email: Some("dana@demo-winery.example".into()),
        theme: Theme::Light,
        ip_address: Some("127.0.0.1".into()),
        user_agent: Some("criterion".into()),
        created_at: now,
        last_activity_at: now,
        expires_at: now + chrono::TimeDelta::hours(8),
        install_generation: client.install_generation,
        account_token_hash: Some(hash_token("demo-owner-token")),
        tab_generation: 0,
        user_role: Some("Admin Owner".to_owned()),
    }
}
