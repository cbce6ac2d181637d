//! Runs the `openai` example as a user would: with no API key it plays its story against the
//! simulated server, exits 0 and prints the summary; with one, its failures are explained.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use support::{Reply, SimServer};

/// The example binary, built by `cargo build --example openai` into this test's own target
/// directory and profile, once per test process: a binary left by an earlier build may be stale
/// when only this test was rebuilt.
fn example_binary() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let exe = std::env::current_exe().unwrap();
        // <target>/<profile>/deps/openai_example-<hash>
        let profile_dir = exe.parent().and_then(Path::parent).unwrap();
        build_example(profile_dir);
        profile_dir
            .join("examples")
            .join(format!("openai{}", std::env::consts::EXE_SUFFIX))
    })
}

fn build_example(profile_dir: &Path) {
    let mut build = Command::new(env!("CARGO"));
    build
        .args(["build", "--quiet", "--example", "openai", "--target-dir"])
        .arg(profile_dir.parent().unwrap())
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    if profile_dir.ends_with("release") {
        build.arg("--release");
    }
    // Cargo describes this test's package in the environment. A build script that watches one
    // of those variables (ring's does) would rebuild with them, and the next plain build would
    // rebuild again without them.
    for (name, _) in std::env::vars() {
        let about_this_package = name.starts_with("CARGO_PKG_")
            || name.starts_with("CARGO_MANIFEST_")
            || name.starts_with("CARGO_CRATE_")
            || name.starts_with("CARGO_PRIMARY_")
            || name.starts_with("CARGO_TARGET_TMPDIR");
        if about_this_package {
            build.env_remove(name);
        }
    }
    let status = build.status().unwrap();
    assert!(status.success(), "cargo build --example openai failed");
}

fn run(args: &[&str]) -> Output {
    Command::new(example_binary())
        .args(args)
        .env_remove("OPENAI_API_KEY")
        .env_remove("OPENAI_BASE_URL")
        .env_remove("RUST_LOG")
        .output()
        .unwrap()
}

#[test]
fn without_a_key_it_plays_the_story_and_prints_the_summary() {
    let output = run(&["--batch", "12", "--concurrency", "3"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");

    let first = stdout.lines().next().unwrap_or_default();
    assert!(first.contains("simulated OpenAI server"), "{first}");
    for row in [
        "summary",
        "calls",
        "attempts sent by the client",
        "successes",
        "failures",
        "rejected by the breaker",
        "requests the server received",
        "total time",
    ] {
        assert!(stdout.contains(row), "no `{row}` in:\n{stdout}");
    }
    let number = |label: &str| -> f64 {
        let line = stdout
            .lines()
            .map(str::trim_start)
            .find(|l| l.starts_with(label));
        let value = line.and_then(|l| l[label.len()..].split_whitespace().next());
        value
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no number for `{label}` in:\n{stdout}"))
    };
    let calls = number("calls");
    assert_eq!(number("successes") + number("failures"), calls);
    // The story refuses three calls while the breaker is open, and those never reach the server.
    assert!(number("rejections by the breaker") >= 3.0, "{stdout}");
    let (attempts, requests) = (
        number("attempts sent by the client"),
        number("requests the server received"),
    );
    assert_eq!(
        requests, attempts,
        "every attempt the client sent reached the server"
    );
    assert!(attempts <= calls * 4.0, "at most 3 retries a call");
    assert!(number("total time") < 30.0, "{stdout}");
    // The story's own landmarks, in the log.
    for event in [
        "retrying",
        "circuit breaker",
        "half-open",
        "answered 200 OK",
    ] {
        assert!(stderr.contains(event), "no `{event}` in:\n{stderr}");
    }
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn help_explains_the_flags() {
    let output = run(&["--help"]);
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for flag in [
        "--batch",
        "--concurrency",
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
    ] {
        assert!(help.contains(flag), "no `{flag}` in:\n{help}");
    }
}

#[test]
fn a_bad_flag_is_a_usage_error() {
    let output = run(&["--batch", "many"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--batch needs a positive number"),
        "{stderr}"
    );
}

#[test]
fn with_a_key_failures_are_explained_not_panicked() {
    let refused = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .unwrap();
    let cases = [
        ("not a url", "invalid URL"),
        ("ftp://example.com/v1", "invalid URL"),
        (&*format!("http://{refused}/v1"), "could not connect"),
    ];
    for (base_url, expected) in cases {
        let output = Command::new(example_binary())
            .arg("Say hello")
            .env("OPENAI_API_KEY", "sk-test")
            .env("OPENAI_BASE_URL", base_url)
            .env("RUST_LOG", "off")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{base_url}");
        assert!(stderr.contains(expected), "{base_url}: {stderr}");
        assert!(!stderr.contains("panicked"), "{base_url}: {stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_key_a_401_says_to_check_the_key() {
    let server = SimServer::start().await.unwrap();
    server.set_standing(Reply::status(401));
    let base_url = server.base_url();

    let output = tokio::task::spawn_blocking(move || {
        Command::new(example_binary())
            .arg("Say hello")
            .env("OPENAI_API_KEY", "sk-wrong")
            .env("OPENAI_BASE_URL", base_url)
            .env("RUST_LOG", "off")
            .output()
            .unwrap()
    })
    .await
    .unwrap();

    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("HTTP 401 Unauthorized (invalid_api_key)"),
        "{stderr}"
    );
    assert!(stderr.contains("check OPENAI_API_KEY"), "{stderr}");
    assert_eq!(server.requests(), 1, "a 401 is not retried");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_key_the_reply_goes_to_stdout() {
    let server = SimServer::start().await.unwrap();
    server.script([Reply::status(503)]);
    let base_url = server.base_url();

    let run_with_key = move |args: &'static [&'static str]| {
        let base_url = base_url.clone();
        tokio::task::spawn_blocking(move || {
            Command::new(example_binary())
                .args(args)
                .env("OPENAI_API_KEY", "sk-test")
                .env("OPENAI_BASE_URL", base_url)
                .env("RUST_LOG", "off")
                .output()
                .unwrap()
        })
    };

    let single = run_with_key(&["Say", "hello"]).await.unwrap();
    assert!(single.status.success());
    let stdout = String::from_utf8_lossy(&single.stdout);
    assert_eq!(stdout, "(simulated) You said: Say hello\n");
    assert_eq!(server.requests(), 2, "the 503 was retried");

    let batch = run_with_key(&["--batch", "3", "--concurrency", "2", "Hi"])
        .await
        .unwrap();
    assert!(batch.status.success());
    let stdout = String::from_utf8_lossy(&batch.stdout);
    for n in 1..=3 {
        let line = format!("[{n}] (simulated) You said: Hi (#{n})");
        assert!(stdout.contains(&line), "no `{line}` in:\n{stdout}");
    }
    assert!(stdout.contains("summary"), "{stdout}");
}
