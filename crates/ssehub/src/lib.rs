//! The ssehub hub (being written).
