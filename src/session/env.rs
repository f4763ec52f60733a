//! What every session on a shard shares: the shard's relay state and who may do what.

use crate::auth::Auth;
use crate::relay::RelayShard;
use std::rc::Rc;

/// What every session on a shard shares.
pub struct SessionEnv {
    pub shard: Rc<RelayShard>,
    pub auth: Auth,
}
