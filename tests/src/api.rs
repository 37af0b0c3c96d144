//! A small HTTPS client for the controller's API, trusting the one
//! certificate the test's controller generated (pinned like an agent does).

use std::sync::{Arc, Mutex};

use dalaba_agent::net::{ControllerUrl, Trust, connect};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;

/// An HTTP answer.
#[derive(Debug, Clone)]
pub struct Answer {
    /// Status code.
    pub status: u16,
    /// Body bytes.
    pub body: Vec<u8>,
}

impl Answer {
    /// The body as JSON (`null` when it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A client for one controller.
#[derive(Debug, Clone)]
pub struct Api {
    url: ControllerUrl,
}

impl Api {
    /// A client for `base` (`https://127.0.0.1:PORT`).
    pub fn new(base: &str) -> anyhow::Result<Api> {
        Ok(Api { url: ControllerUrl::parse(base)? })
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> anyhow::Result<Answer> {
        self.call("GET", path, None, "application/json").await
    }

    /// `POST path` with a JSON body.
    pub async fn post(&self, path: &str, body: &serde_json::Value) -> anyhow::Result<Answer> {
        self.call("POST", path, Some(body.to_string().into_bytes()), "application/json").await
    }

    /// Any method, any body.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<Vec<u8>>,
        content_type: &str,
    ) -> anyhow::Result<Answer> {
        // Tests trust whatever certificate their own controller generated.
        let io = connect(&self.url, Trust::Capture(Arc::new(Mutex::new(None)))).await?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(io)).await?;
        tokio::spawn(conn);
        let req = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, format!("{}:{}", self.url.host, self.url.port))
            .header(hyper::header::CONTENT_TYPE, content_type)
            .body(Full::new(Bytes::from(body.unwrap_or_default())))?;
        let resp = sender.send_request(req).await?;
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await?.to_bytes().to_vec();
        Ok(Answer { status, body })
    }

    /// Imports a generated county ([`crate::county_csv`]) of `townships`
    /// and `villages`; returns the village ids in code order.
    pub async fn import_county(&self, townships: usize, villages: usize) -> anyhow::Result<Vec<i64>> {
        let csv = crate::county_csv(townships, villages);
        let r = self.call("POST", "/api/v1/directory/import", Some(csv.into_bytes()), "text/csv").await?;
        anyhow::ensure!(r.status == 200, "county import answered {}: {}", r.status, r.text());
        let regions = self.get("/api/v1/regions").await?.json();
        let ids: Vec<i64> = regions
            .as_array()
            .ok_or_else(|| anyhow::anyhow!("regions is not an array"))?
            .iter()
            .filter(|r| r["level"] == "village")
            .filter_map(|r| r["id"].as_i64())
            .collect();
        anyhow::ensure!(ids.len() == villages, "imported {villages} villages, the API lists {}", ids.len());
        Ok(ids)
    }
}
