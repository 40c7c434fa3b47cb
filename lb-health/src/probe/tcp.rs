//! TCP_CHECK: the connection opens within the deadline.

use super::{ConnectSpec, Phase, abort, connect_tcp, with_deadline};
use crate::error::Failure;

/// Connects, then closes with RST.
pub(crate) async fn run(spec: &ConnectSpec) -> Result<(), Failure> {
    let phase = Phase::default();
    let stream = with_deadline(spec.timeout, &phase, connect_tcp(spec)).await?;
    abort(stream);
    Ok(())
}
