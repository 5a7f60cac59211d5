from __future__ import annotations

from django import forms

from . import outbound
from .models import WebhookEndpoint


class WebhookForm(forms.ModelForm):
    class Meta:
        model = WebhookEndpoint
        fields = ["url", "secret", "active"]
        widgets = {"secret": forms.PasswordInput(render_value=True)}

    def clean_url(self) -> str:
        url: str = self.cleaned_data["url"]
        try:
            outbound.check_url(url)  # public http(s) only, checked again at delivery
        except outbound.Refused as exc:
            raise forms.ValidationError(exc.detail) from None
        return url
