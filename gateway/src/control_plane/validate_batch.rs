//! Device checks go to the control plane in batches (`POST /v1/gateway/devices/validate/batch`,
//! through a [`Batcher`](super::batcher::Batcher)): in a reconnect storm every HELLO's check
//! that misses the entitlement cache queues while earlier batches are in flight, and the control
//! plane reads the whole batch's devices together. Every check is urgent (a HELLO waits), so a
//! lone HELLO's goes at once, in a batch of one.

use httvps_contract::limits::MAX_VALIDATE_BATCH;
use httvps_contract::routes;
use httvps_contract::validate::{ValidateBatch, ValidateBatchResponse, ValidateRequest};
use httvps_contract::RefusalCode;

use super::batcher::{fail_all, BatchRoute};
use super::{ControlPlaneClient, CpError, ValidateAnswer};
use crate::metrics as m;

/// Devices in one batch: within the control plane's body limit even with every HELLO's
/// credentials at their longest.
const MAX_DEVICES: usize = if MAX_VALIDATE_BATCH < 500 {
    MAX_VALIDATE_BATCH
} else {
    500
};

/// The device validation batch route.
pub(super) struct ValidateRoute;

impl BatchRoute for ValidateRoute {
    type Item = ValidateRequest;
    type Outcome = ValidateAnswer;
    const MAX_ITEMS: usize = MAX_DEVICES;

    fn is_urgent(_: &ValidateRequest) -> bool {
        true
    }

    async fn send_batch(
        client: &ControlPlaneClient,
        devices: Vec<ValidateRequest>,
    ) -> Result<Vec<Result<ValidateAnswer, CpError>>, Vec<ValidateRequest>> {
        let n = devices.len();
        let body = ValidateBatch { devices };
        metrics::counter!(m::VALIDATE_BATCHES_TOTAL).increment(1);
        metrics::counter!(m::VALIDATE_BATCH_ITEMS_TOTAL).increment(n as u64);
        let answer = client
            .call_route::<ValidateBatchResponse>(
                reqwest::Method::POST,
                routes::VALIDATE_DEVICES_BATCH,
                Some(&body),
            )
            .await;
        match answer {
            Ok(Some(answer)) if answer.results.len() == n => Ok(answer
                .results
                .into_iter()
                .map(|r| Ok(ValidateAnswer::from(r)))
                .collect()),
            Ok(_) => {
                let e = CpError::Unavailable("the validation batch answer is short".into());
                Ok(fail_all(n, &e))
            }
            Err(CpError::Refused {
                status: 404 | 405,
                code: RefusalCode::Unknown,
                ..
            }) => Err(body.devices),
            Err(e) => Ok(fail_all(n, &super::device_check_error(e))),
        }
    }

    async fn send_one(
        client: &ControlPlaneClient,
        device: ValidateRequest,
    ) -> Result<ValidateAnswer, CpError> {
        client.validate_device_alone(&device).await
    }
}
