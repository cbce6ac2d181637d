//! The runtime's error travels through the error types applications already use.

use std::time::Duration;

use resilient::{BreakerConfig, resilient};

#[resilient(retries = 0, breaker = "errors-anyhow")]
async fn through_anyhow(fail: bool) -> Result<u32, anyhow::Error> {
    if fail {
        Err(anyhow::anyhow!("service said no"))
    } else {
        Ok(1)
    }
}

#[resilient(retries = 0, timeout = "10ms")]
async fn through_box() -> Result<u32, Box<dyn std::error::Error + Send + Sync>> {
    tokio::time::sleep(Duration::from_secs(1)).await;
    Ok(1)
}

#[tokio::test(start_paused = true)]
async fn anyhow_and_boxed_errors_carry_refusals_and_timeouts() {
    resilient::configure_breaker("errors-anyhow", BreakerConfig::new().failure_threshold(1))
        .unwrap();
    assert!(through_anyhow(true).await.is_err());
    let refused = through_anyhow(false).await.unwrap_err();
    let refused = refused
        .downcast_ref::<resilient::Error>()
        .expect("a resilient::Error");
    assert!(refused.is_rejected());
    assert_eq!(refused.breaker(), Some("errors-anyhow"));

    let timed_out = through_box().await.unwrap_err();
    let timed_out = timed_out
        .downcast_ref::<resilient::Error>()
        .expect("a resilient::Error");
    assert!(timed_out.is_timeout());
}
