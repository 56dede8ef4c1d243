//! Starts the mock LLM server on 127.0.0.1:0 for a test.

use server::mock_llm::{MockConfig, MockState};

pub struct Mock {
    pub url: String,
    pub state: MockState,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

impl Mock {
    pub async fn start(config: MockConfig) -> Mock {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/v1", listener.local_addr().unwrap());
        let state = MockState::new(config);
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let serve_state = state.clone();
        tokio::spawn(async move {
            server::mock_llm::serve(listener, serve_state, async {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });
        Mock {
            url,
            state,
            _shutdown: tx,
        }
    }
}
