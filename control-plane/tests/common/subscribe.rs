//! A user on a new plan with an active subscription and devices, seeded through the store: the
//! set-up the control plane's tests and the gateway's (`gateway/tests/common/cp.rs`, which
//! includes this file by path) share.

use httvps_control_plane::auth::token;
use httvps_control_plane::model::ResetStrategy;
use httvps_control_plane::store::{NewDevice, NewPlan, NewSubscription, Store};
use uuid::Uuid;

/// What the new plan allows.
pub struct Terms<'a> {
    /// Bytes per period; `None`: unlimited.
    pub quota: Option<i64>,
    pub session_limit: i32,
    /// Region ids the plan allows; empty: every region.
    pub regions: &'a [Uuid],
}

/// What [`subscribe`] created.
pub struct Subscribed {
    pub user: Uuid,
    pub plan: Uuid,
    pub subscription: Uuid,
    /// Each device's id and token, in the order of the names given.
    pub devices: Vec<(Uuid, String)>,
}

/// A new user on a new plan with `terms`, subscribed now, with one device per name.
pub async fn subscribe(store: &Store, terms: Terms<'_>, device_names: &[String]) -> Subscribed {
    let tag = Uuid::new_v4().simple().to_string();
    let plan = store
        .create_plan(
            "test",
            &NewPlan {
                name: format!("plan-{tag}"),
                device_limit: 5,
                session_limit: terms.session_limit,
                quota_bytes: terms.quota,
                reset_strategy: ResetStrategy::CalendarMonth,
                duration_days: Some(30),
                allowed_regions: terms.regions.to_vec(),
            },
        )
        .await
        .unwrap();
    let user = store
        .create_user("test", &format!("user-{tag}"), None)
        .await
        .unwrap();
    let subscription = store
        .create_subscription(
            "test",
            user.id,
            &NewSubscription {
                plan_id: plan.id,
                on_hold: false,
                queued: false,
            },
        )
        .await
        .unwrap();
    let mut devices = Vec::new();
    for name in device_names {
        let secret = token::generate();
        let device = store
            .create_device(
                "test",
                &NewDevice {
                    user_id: user.id,
                    name: name.clone(),
                    token_hash: token::hash(&secret),
                },
            )
            .await
            .unwrap();
        devices.push((device.id, secret));
    }
    Subscribed {
        user: user.id,
        plan: plan.id,
        subscription: subscription.id,
        devices,
    }
}
