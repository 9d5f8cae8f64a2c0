//! Golden fixtures through the transcoder, checked by the real interpreters of the other runtime.
//! Starts with the environment check every later case relies on: both interpreters run and
//! import what the fixtures and clients need.
mod common;

use std::time::Duration;

use common::python::{self, Py};

const PY_TIMEOUT: Duration = Duration::from_secs(60);

#[test]
fn interpreters_are_real_cpython_2_7_and_3() {
    let out = python::run(
        Py::Py2,
        &[
            "-c",
            "import sys, cPickle, pickle, memcache, datetime, decimal, collections, zlib\n\
             print '%d.%d.%d' % sys.version_info[:3]",
        ],
        b"",
        PY_TIMEOUT,
    );
    out.assert_ok("python2 import check");
    assert_eq!(out.stdout_str().trim(), "2.7.18");

    let out = python::run(
        Py::Py3,
        &[
            "-c",
            "import sys, pickle, pymemcache, memcache, django\n\
             from django.core.cache.backends.memcached import PyMemcacheCache\n\
             print(sys.version_info[0], pickle.HIGHEST_PROTOCOL)",
        ],
        b"",
        PY_TIMEOUT,
    );
    out.assert_ok("python3 import check");
    assert_eq!(out.stdout_str().trim(), "3 5");
}
