//! The ssehub client (being written).
