//! What the fuzz targets share: hubs made once per process, and a runtime to open streams in.

use std::sync::{Arc, OnceLock};

use ssehub::Hub;

/// A current-thread runtime and four hubs on memory stores: Mercure dialect 0 and 1, each
/// open and with a subscriber key (anonymous subscribers allowed; a token that is sent is
/// verified).
pub struct World {
    pub runtime: tokio::runtime::Runtime,
    hubs: [Arc<Hub>; 4],
}

impl World {
    /// The hub picked by the low two bits of `pick`: bit 0 dialect 1, bit 1 a subscriber key.
    pub fn hub(&self, pick: u8) -> &Arc<Hub> {
        &self.hubs[usize::from(pick & 3)]
    }
}

pub fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let key: &[u8] = b"fuzz-key";
        World {
            runtime: tokio::runtime::Builder::new_current_thread()
                .build()
                .expect("a runtime"),
            hubs: [
                ssehub::fuzzing::hub(true, None),
                ssehub::fuzzing::hub(false, None),
                ssehub::fuzzing::hub(true, Some(key)),
                ssehub::fuzzing::hub(false, Some(key)),
            ],
        }
    })
}
