//! The example controllers, shared by the controller-manager, the demo and the tests.
#![allow(dead_code)] // each target uses part of it

pub mod deployment;
pub mod endpoints;
pub mod endpointslice;
pub mod pod_view;
pub mod pods;
pub mod replicaset;
