//! The tantivy index on disk: opening or creating it, its writer lock, its commit
//! payload, and the few lookups an update needs. Nothing here knows about git.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tantivy::collector::{DocSetCollector, TopDocs};
use tantivy::directory::error::LockError;
use tantivy::query::TermQuery;
use tantivy::schema::{IndexRecordOption, Term, Value as _};
use tantivy::{
    Index, IndexReader, IndexWriter, ReloadPolicy, Searcher, TantivyDocument, TantivyError,
};

use super::fields::{build_schema, register_tokenizers, Fields, FORMAT};
use super::{IndexError, Payload, LOCK_WAIT};

/// Memory and threads for a writer: tantivy's own threads tokenize and build segments
/// while ours read git and parse JSON. A generous budget means few segments, so a
/// full build needs few merges.
pub(super) fn full_writer_options() -> tantivy::indexer::IndexWriterOptions {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8);
    tantivy::indexer::IndexWriterOptions::builder()
        .num_worker_threads(threads)
        .memory_budget_per_thread(256 << 20)
        .num_merge_threads(1)
        .build()
}

/// One thread and a small budget (tantivy sizes its term table from it): enough for
/// the documents of a push.
pub(super) fn update_writer_options() -> tantivy::indexer::IndexWriterOptions {
    tantivy::indexer::IndexWriterOptions::builder()
        .num_worker_threads(1)
        .memory_budget_per_thread(20 << 20)
        .num_merge_threads(1)
        .build()
}

/// An opened index and its fields.
pub(super) struct Store {
    pub(super) dir: PathBuf,
    pub(super) index: Index,
    pub(super) fields: Fields,
}

impl Store {
    /// Opens the index if it exists in this format.
    pub(super) fn open(dir: &Path) -> Result<Option<Store>, IndexError> {
        if !dir.join("meta.json").is_file() {
            return Ok(None);
        }
        let Ok(index) = Index::open_in_dir(dir) else {
            return Ok(None);
        };
        let Some(fields) = Fields::of(&index.schema()) else {
            return Ok(None);
        };
        register_tokenizers(&index);
        let store = Store {
            dir: dir.to_path_buf(),
            index,
            fields,
        };
        Ok(Some(store))
    }

    /// Opens the index, or creates it afresh when it is missing, unreadable or of
    /// another format.
    pub(super) fn open_or_create(dir: &Path) -> Result<Store, IndexError> {
        if let Some(store) = Store::open(dir)? {
            if store.payload()?.is_none_or(|p| p.format == FORMAT) {
                return Ok(store);
            }
        }
        let io = |source| IndexError::Io {
            path: dir.to_path_buf(),
            source,
        };
        if dir.exists() {
            std::fs::remove_dir_all(dir).map_err(io)?;
        }
        std::fs::create_dir_all(dir).map_err(io)?;
        let index =
            Index::create_in_dir(dir, build_schema()).map_err(|source| IndexError::Tantivy {
                path: dir.to_path_buf(),
                source,
            })?;
        register_tokenizers(&index);
        let fields = Fields::of(&index.schema()).expect("our own schema");
        Ok(Store {
            dir: dir.to_path_buf(),
            index,
            fields,
        })
    }

    pub(super) fn at<T>(&self, result: Result<T, TantivyError>) -> Result<T, IndexError> {
        result.map_err(|source| IndexError::Tantivy {
            path: self.dir.clone(),
            source,
        })
    }

    pub(super) fn payload(&self) -> Result<Option<Payload>, IndexError> {
        let metas = self.at(self.index.load_metas())?;
        Ok(metas
            .payload
            .and_then(|text| serde_json::from_str(&text).ok()))
    }

    /// Takes the writer lock, waiting for another process that holds it.
    pub(super) fn writer(
        &self,
        options: tantivy::indexer::IndexWriterOptions,
    ) -> Result<IndexWriter, IndexError> {
        let started = Instant::now();
        loop {
            match self.index.writer_with_options(options.clone()) {
                Ok(writer) => return Ok(writer),
                Err(TantivyError::LockFailure(LockError::LockBusy, _))
                    if started.elapsed() < LOCK_WAIT =>
                {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(TantivyError::LockFailure(LockError::LockBusy, _)) => {
                    return Err(IndexError::Busy {
                        path: self.dir.clone(),
                    })
                }
                Err(e) => return self.at(Err(e)),
            }
        }
    }

    pub(super) fn reader(&self) -> Result<IndexReader, IndexError> {
        self.at(self
            .index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into())
    }

    pub(super) fn searcher(&self) -> Result<Searcher, IndexError> {
        Ok(self.reader()?.searcher())
    }

    pub(super) fn documents(&self) -> Result<u64, IndexError> {
        Ok(self.searcher()?.num_docs())
    }

    /// The `created` time stored for a document key.
    pub(super) fn stored_created(
        &self,
        searcher: &Searcher,
        key: &str,
    ) -> Result<Option<i64>, IndexError> {
        let query = TermQuery::new(
            Term::from_field_text(self.fields.key, key),
            IndexRecordOption::Basic,
        );
        let top = self.at(searcher.search(&query, &TopDocs::with_limit(1)))?;
        let Some((_, address)) = top.first() else {
            return Ok(None);
        };
        let doc: TantivyDocument = self.at(searcher.doc(*address))?;
        Ok(doc
            .get_first(self.fields.created)
            .and_then(|v| v.as_datetime())
            .map(|d| d.into_timestamp_secs()))
    }

    /// The keys of every record version in the index.
    pub(super) fn record_keys(&self, searcher: &Searcher) -> Result<HashSet<String>, IndexError> {
        let query = TermQuery::new(
            Term::from_field_text(self.fields.status, "published"),
            IndexRecordOption::Basic,
        );
        let addresses = self.at(searcher.search(&query, &DocSetCollector))?;
        let mut keys = HashSet::new();
        for address in addresses {
            let doc: TantivyDocument = self.at(searcher.doc(address))?;
            if let Some(key) = doc.get_first(self.fields.key).and_then(|v| v.as_str()) {
                keys.insert(key.to_string());
            }
        }
        Ok(keys)
    }
}
