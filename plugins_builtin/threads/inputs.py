"""User input: the protocol's ``UserInput`` items, for clients and for the model.

``localImage`` and ``localAudio`` name files on the server's machine: the
image is read (off the event loop) and sent to the model as a data URL, as
the reference does; a file that cannot be read becomes a short text part
saying so, so the model knows the user meant to show something.
Mentions and skills are passed as tags naming them.
"""

from __future__ import annotations

import base64
import logging
import mimetypes
import os
import uuid
from typing import Any

from kernel import Kernel

__all__ = ["MAX_IMAGE_BYTES", "input_to_model", "user_message_item"]

log = logging.getLogger("plugins.threads")

MAX_IMAGE_BYTES = 20 * 1024 * 1024
_IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})


def user_message_item(items: list[dict[str, Any]], client_id: str | None) -> dict[str, Any]:
    """The ``userMessage`` item of some user input (text parts get ``text_elements``)."""
    content = [
        {**item, "text_elements": item.get("text_elements", [])}
        if item.get("type") == "text"
        else item
        for item in items
    ]
    return {
        "type": "userMessage",
        "id": str(uuid.uuid4()),
        "clientId": client_id,
        "content": content,
    }


def _read_image(path: str) -> str:
    """A data URL of the image at ``path``; raises ``ValueError`` saying why not."""
    if not os.path.isabs(path):
        raise ValueError("the path is not absolute")
    mime = mimetypes.guess_type(path)[0] or ""
    if mime not in _IMAGE_TYPES:
        raise ValueError(f"not a PNG, JPEG, GIF or WebP image ({mime or 'unknown type'})")
    size = os.path.getsize(path)
    if size > MAX_IMAGE_BYTES:
        raise ValueError(f"{size} bytes is more than the {MAX_IMAGE_BYTES} bytes allowed")
    with open(path, "rb") as handle:
        data = handle.read(MAX_IMAGE_BYTES + 1)
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


async def input_to_model(
    items: list[dict[str, Any]], kernel: Kernel, owner: object
) -> dict[str, Any]:
    """A Responses API user message from ``UserInput`` items."""
    content: list[dict[str, Any]] = []
    for item in items:
        kind = item.get("type")
        if kind == "text":
            content.append({"type": "input_text", "text": item["text"]})
        elif kind == "image":
            if "url" in item:
                content.append({"type": "input_image", "image_url": item["url"]})
            else:
                content.append({"type": "input_image", "file_id": item["fileId"]})
        elif kind == "localImage":
            path = item["path"]
            try:
                url = await kernel.blocking.run(owner, _read_image, path, timeout=30)
            except (OSError, ValueError, TimeoutError) as exc:
                log.info("local image %s not sent to the model: %s", path, exc)
                content.append(
                    {
                        "type": "input_text",
                        "text": f'<image path="{path}">unreadable: {exc}</image>',
                    }
                )
            else:
                content.append({"type": "input_image", "image_url": url})
        elif kind in ("mention", "skill"):
            tag = f'<{kind} name="{item["name"]}" path="{item["path"]}" />'
            content.append({"type": "input_text", "text": tag})
        elif kind in ("audio", "localAudio"):
            where = item.get("path") or item.get("url") or item.get("fileId")
            content.append({"type": "input_text", "text": f'<audio source="{where}" />'})
    return {"type": "message", "role": "user", "content": content}
