//! ssehub-store-log (placeholder, being written).
