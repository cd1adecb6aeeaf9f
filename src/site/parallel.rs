//! The two parallel stages of a build: records, each rendered by one of a few worker
//! threads with its own repository handle, and the pages made of many records,
//! planned on the calling thread and rendered by workers meanwhile. Both hand results
//! back in a fixed order, so that the site is the same whatever thread finishes first.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use git2::{Oid, Repository};

use super::error::SiteError;
use super::pages;
use super::records::{RecordInput, RecordOut, Shared, Worker};
use super::render::Renderer;
use super::report::Progress;
use super::write::Output;

/// Threads for rendering: one per core, at most 8, and no more than `work` items.
fn worker_threads(work: usize) -> usize {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 8)
        .min(work.max(1))
}

/// A page queued for rendering: where it goes and how it is made.
pub type QueuePage<'q, 'p> = dyn FnMut(String, pages::RenderFn<'p>) -> Result<(), SiteError> + 'q;

/// Runs `plan` on the calling thread, which plans pages (and computes their keys) and
/// queues those to write; worker threads render and write them meanwhile. A full build
/// has a listing page for every 50 records of every facet value, a quarter of its time
/// when rendered one by one. If pages fail, the error is that of the first one in plan
/// order, whichever worker met it first: the same error on every run.
pub fn render_pages<'p>(
    renderer: &Renderer,
    output: &Output,
    plan: impl FnOnce(&mut QueuePage<'_, 'p>) -> Result<(), SiteError>,
) -> Result<(), SiteError> {
    // The earliest failed page so far: its place in the queue and its error.
    let failed: Mutex<Option<(usize, SiteError)>> = Mutex::new(None);
    let failed_before = |n: usize| {
        failed
            .lock()
            .expect("page error")
            .as_ref()
            .is_some_and(|(k, _)| *k < n)
    };
    let (send, receive) = std::sync::mpsc::sync_channel::<(usize, String, pages::RenderFn<'p>)>(32);
    let receive = Mutex::new(receive);
    std::thread::scope(|scope| {
        for _ in 0..worker_threads(usize::MAX) {
            scope.spawn(|| loop {
                let next = receive.lock().expect("page queue").recv();
                let Ok((n, path, render)) = next else { break };
                // Pages after a failed one are only drained.
                if failed_before(n) {
                    continue;
                }
                let written = match render {
                    pages::RenderFn::Page(render) => {
                        render(renderer).and_then(|bytes| output.write(&path, &bytes))
                    }
                    pages::RenderFn::Stream(write) => output.write_streamed(&path, write),
                    pages::RenderFn::Unchanged => Ok(()),
                };
                if let Err(e) = written {
                    let mut failed = failed.lock().expect("page error");
                    if failed.as_ref().is_none_or(|(k, _)| n < *k) {
                        *failed = Some((n, e));
                    }
                }
            });
        }
        let send = send;
        let mut queued = 0;
        plan(&mut |path, render| {
            if failed_before(usize::MAX) {
                return Ok(());
            }
            queued += 1;
            send.send((queued, path, render))
                .map_err(|_| SiteError::Input("the page renderers stopped unexpectedly".into()))
        })
        // `send` is dropped here, which ends the workers' loops; the scope joins them.
    })?;
    match failed.into_inner().expect("page error") {
        Some((_, e)) => Err(e),
        None => Ok(()),
    }
}

/// Renders `inputs` on as many threads as the machine has cores (at most 8) and hands
/// each result to `merge` on the calling thread, in the order of `inputs`: a record's
/// output (its summary and search terms) is merged and dropped while the others
/// render, instead of all of them being held until the end. Each output comes with its
/// summary's digest (see [`pages::summary_digest`]), made on the worker.
pub fn render_records(
    repo_path: &Path,
    shared: &Shared<'_>,
    inputs: &[&RecordInput],
    rev: Oid,
    progress: &dyn Progress,
    merge: &mut dyn FnMut(String, Option<(RecordOut, String)>),
) -> Result<(), SiteError> {
    let threads = worker_threads(inputs.len());
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let first_error: Mutex<Option<SiteError>> = Mutex::new(None);
    std::thread::scope(|scope| {
        // Bounded: when the merging thread falls behind (the workers use both cores),
        // the workers wait instead of queueing thousands of rendered records.
        let (send, receive) =
            std::sync::mpsc::sync_channel::<(usize, Option<(RecordOut, String)>)>(4 * threads);
        for _ in 0..threads {
            let send = send.clone();
            let (next, failed, first_error) = (&next, &failed, &first_error);
            scope.spawn(move || {
                let repo = match Repository::open(repo_path) {
                    Ok(repo) => repo,
                    Err(e) => {
                        failed.store(true, Ordering::Relaxed);
                        first_error.lock().unwrap().get_or_insert(e.into());
                        return;
                    }
                };
                let mut worker = Worker::new(&repo);
                loop {
                    if failed.load(Ordering::Relaxed) {
                        break;
                    }
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(input) = inputs.get(i) else { break };
                    match worker.record(shared, input, rev) {
                        Ok(out) => {
                            let out = out.map(|out| {
                                let digest = pages::summary_digest(&out.summary);
                                (out, digest)
                            });
                            if send.send((i, out)).is_err() {
                                break;
                            }
                        }
                        Err(e) => {
                            failed.store(true, Ordering::Relaxed);
                            first_error
                                .lock()
                                .unwrap()
                                .get_or_insert(SiteError::Input(format!(
                                    "record {}: {e}",
                                    input.id
                                )));
                            break;
                        }
                    }
                    progress.advance(1);
                }
            });
        }
        drop(send);
        // Workers take inputs in order, so only a few results wait for an earlier one.
        let mut waiting: BTreeMap<usize, Option<(RecordOut, String)>> = BTreeMap::new();
        let mut due = 0;
        for (i, out) in receive {
            waiting.insert(i, out);
            while let Some(out) = waiting.remove(&due) {
                merge(inputs[due].id.clone(), out);
                due += 1;
            }
        }
    });
    match first_error.into_inner().unwrap() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}
