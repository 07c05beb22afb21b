//! Derive macros for kube-reconcile: complete, structural CustomResourceDefinitions from
//! Rust types, with garde rules mirrored into the schema.
//!
//! Not implemented yet: this crate exports no macro until the CRD-derive issue lands.
//! It is in the workspace now so the layout and release process are fixed early.
