from __future__ import annotations

from django import forms

from .models import WebhookEndpoint


class WebhookForm(forms.ModelForm):
    class Meta:
        model = WebhookEndpoint
        fields = ["url", "secret", "active"]
        widgets = {"secret": forms.PasswordInput(render_value=True)}
