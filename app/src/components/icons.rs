//! Inline SVG icons: they draw the same everywhere, with no emoji font needed.

use leptos::prelude::*;

/// The path data of each icon (24×24 viewBox, stroked).
fn path(name: &str) -> &'static str {
    match name {
        "thumbs-up" => {
            "M7 10v11M3 10h4v11H3zM7 10l4-8a2.5 2.5 0 0 1 2.5 2.5V8h5.6a2 2 0 0 1 2 2.3l-1.4 9A2 2 0 0 1 18.7 21H7"
        }
        "thumbs-down" => {
            "M17 14V3M21 14h-4V3h4zM17 14l-4 8a2.5 2.5 0 0 1-2.5-2.5V16H4.9a2 2 0 0 1-2-2.3l1.4-9A2 2 0 0 1 6.3 3H17"
        }
        "pause" => "M8 5v14M16 5v14",
        "play" => "M7 4l13 8-13 8z",
        "stop" => "M6 6h12v12H6z",
        "fork" => {
            "M6 3v6a3 3 0 0 0 3 3h6a3 3 0 0 1 3 3v6M6 3a2 2 0 1 0 0 .1M18 21a2 2 0 1 0 0-.1M6 9v12"
        }
        "redirect" => "M4 12h13M13 6l6 6-6 6",
        "check" => "M4 12l5 5L20 6",
        "x" => "M6 6l12 12M18 6L6 18",
        "up" => "M12 19V5M5 12l7-7 7 7",
        "down" => "M12 5v14M19 12l-7 7-7-7",
        "plus" => "M12 5v14M5 12h14",
        "trash" => "M4 7h16M9 7V4h6v3M6 7l1 13h10l1-13",
        "star" => "M12 3l2.8 5.8 6.2.9-4.5 4.4 1 6.2L12 17.3 6.5 20.3l1-6.2L3 9.7l6.2-.9z",
        "expand" => "M9 6l6 6-6 6",
        "collapse" => "M6 9l6 6 6-6",
        "live" => {
            "M12 12m-3 0a3 3 0 1 0 6 0a3 3 0 1 0-6 0M5 5a10 10 0 0 0 0 14M19 5a10 10 0 0 1 0 14"
        }
        "edit" => "M4 20h4L19 9l-4-4L4 16zM14 6l4 4",
        _ => "",
    }
}

/// An icon; decorative (hidden from screen readers): the control it sits in carries the label.
pub fn icon(name: &'static str) -> impl IntoView {
    view! {
        <svg class="icon" viewBox="0 0 24 24" width="16" height="16" aria-hidden="true" focusable="false"
            fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round">
            <path d=path(name)/>
        </svg>
    }
}
