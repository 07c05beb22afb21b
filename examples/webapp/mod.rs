//! A small CRD-based operator: a `WebApp` resource that owns a Deployment and a
//! Service. Shared by the `webapp-operator` example and its integration test.

pub mod operator;
pub mod resource;
