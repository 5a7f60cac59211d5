from __future__ import annotations

from typing import Any

from django import forms

from . import outbound
from .models import WebhookEndpoint


class WebhookForm(forms.ModelForm):
    """The secret is never written back into the page: left empty, an existing
    webhook keeps its secret."""

    class Meta:
        model = WebhookEndpoint
        fields = ["url", "secret", "format", "active"]
        widgets = {"secret": forms.PasswordInput(render_value=False)}
        labels = {"format": "Payload"}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["format"].required = False  # older clients post no format: JSON
        self.keeps_secret = bool(self.instance and self.instance.pk and self.instance.secret)
        self.fields["secret"].required = not self.keeps_secret
        self.fields["secret"].help_text = (
            "Set: leave empty to keep it, or type a new one." if self.keeps_secret
            else "Shared with the receiver, to check the X-Hivemind-Signature header."
        )  # fmt: skip

    def clean_format(self) -> str:
        return self.cleaned_data.get("format") or "json"

    def clean_secret(self) -> str:
        secret: str = self.cleaned_data.get("secret") or ""
        if not secret and self.keeps_secret:
            return self.instance.secret
        return secret

    def clean_url(self) -> str:
        url: str = self.cleaned_data["url"]
        try:
            outbound.check_url(url)  # public http(s) only, checked again at delivery
        except outbound.Refused as exc:
            raise forms.ValidationError(exc.detail) from None
        return url
