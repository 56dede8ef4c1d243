//! Request bodies of upload routes: streamed to a file under `DATA_DIR/uploads` (memory stays
//! bounded whatever the size), refused past the route's limit, removed when dropped.

use std::io::Read;
use std::path::{Path, PathBuf};

use axum::http::StatusCode;
use futures::StreamExt;
use tokio::io::AsyncWriteExt;

use super::error::ApiError;

/// A spooled request body; the file goes when this does.
pub struct Upload {
    path: PathBuf,
    len: u64,
}

impl Upload {
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether the first non-blank byte (after a UTF-8 byte-order mark) is `b`.
    pub fn starts_with(&self, b: u8) -> Result<bool, ApiError> {
        let mut head = Vec::with_capacity(4096);
        std::fs::File::open(&self.path)
            .map_err(io)?
            .take(4096)
            .read_to_end(&mut head)
            .map_err(io)?;
        let head = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&head);
        Ok(head.iter().find(|c| !c.is_ascii_whitespace()) == Some(&b))
    }

    /// The whole body (only for small ones).
    pub fn read(&self) -> Result<Vec<u8>, ApiError> {
        std::fs::read(&self.path).map_err(io)
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn io(e: std::io::Error) -> ApiError {
    tracing::error!(error = %e, "upload file error");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "the upload could not be stored",
    )
}

/// Writes `body` to a new file under `data_dir/uploads`, refusing it (413) past `limit`
/// bytes. Files left by a process that died are removed when they are a day old.
pub async fn spool(
    data_dir: &Path,
    body: axum::body::Body,
    limit: u64,
) -> Result<Upload, ApiError> {
    let dir = data_dir.join("uploads");
    tokio::fs::create_dir_all(&dir).await.map_err(io)?;
    forget_old(&dir).await;
    let upload = Upload {
        path: dir.join(format!("upload-{}.part", uuid::Uuid::new_v4().simple())),
        len: 0,
    };
    let mut file = tokio::io::BufWriter::with_capacity(
        256 * 1024,
        tokio::fs::File::create(&upload.path).await.map_err(io)?,
    );
    let mut upload = upload;
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            if over_limit(&e) {
                too_large(limit)
            } else {
                ApiError::bad_request(Some("body".into()), format!("the upload broke off: {e}"))
            }
        })?;
        upload.len += chunk.len() as u64;
        if upload.len > limit {
            return Err(too_large(limit));
        }
        file.write_all(&chunk).await.map_err(io)?;
    }
    file.flush().await.map_err(io)?;
    Ok(upload)
}

/// The 413 of an upload past `limit` bytes.
pub fn too_large(limit: u64) -> ApiError {
    ApiError {
        field: Some("body".into()),
        ..ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!(
                "the file is larger than {} MB (MAX_UPLOAD_MB)",
                limit / 1024 / 1024
            ),
        )
    }
}

/// Whether a body error is the body limit's.
fn over_limit(e: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if s.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = s.source();
    }
    false
}

async fn forget_old(dir: &Path) {
    let Ok(mut entries) = tokio::fs::read_dir(dir).await else {
        return;
    };
    let day = std::time::Duration::from_secs(24 * 3600);
    while let Ok(Some(entry)) = entries.next_entry().await {
        let old = entry
            .metadata()
            .await
            .ok()
            .and_then(|m| m.modified().ok())
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > day);
        if old {
            let _ = tokio::fs::remove_file(entry.path()).await;
        }
    }
}
