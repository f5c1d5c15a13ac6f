"""Simplified Chinese (Discord's ``zh-CN``) for every code of ``hailuo.i18n.messages``.

Registered as ``CATALOG["zh-CN"]``; ``zh-TW`` and other Chinese variants fall
back to English until a table of their own exists. Each entry keeps its English
twin's placeholders, format specs (``{limit:,}``) and Discord markup
(``<@{user_id}>``, ``<t:{renews_at}:R>``, ``**``); ``tests/test_catalog.py``
checks both. Terms: credits 积分, allowance 额度, provider 服务商, role 身份组,
moderator 版主, prompt 提示词, camera command 运镜指令. Commands are named as a
zh-CN member sees them (``cogs/translator.py``): ``/海螺 额度`` is ``/hailuo quota``.
"""

from __future__ import annotations

ZH_CN: dict[str, str] = {
    # request checks
    "prompt.empty": "提示词为空：请至少写 {minimum} 个字符。",
    "prompt.too_long": (
        "提示词长度为 {actual} 个字符，上限为 {maximum}（运镜指令按实际发送的写法计入）。"
    ),
    "spec.model": "这里不提供模型 {model}。请从以下模型中选择：{allowed}。",
    "spec.mode": "{model} 无法制作这类视频（{mode}）。",
    "spec.resolution": "{model} 的这类视频不提供 {resolution}。请从以下选项中选择：{allowed}。",
    "spec.duration": (
        "{model} 在 {resolution} 下只能生成 {allowed} 秒的视频，不支持 {duration} 秒。"
    ),
    "spec.model_mode": "{model} 不支持{mode}，只支持{allowed}。如需{mode}，请选择：{models}。",
    # what the server's providers offer (hailuo.jobs.capabilities)
    "capability.model": "本服务器使用的服务商（{providers}）不提供 {model}；请选择 {allowed}。",
    "capability.mode": "本服务器使用的服务商（{providers}）不支持{mode}，只支持{allowed}。",
    "capability.resolution": (
        "本服务器使用的服务商（{providers}）在 {mode} 下不提供 {resolution}；请选择 {allowed}。"
    ),
    "capability.duration": (
        "本服务器使用的服务商（{providers}）不提供 {duration} 秒的 {resolution} 视频；"
        "请选择 {allowed} 秒。"
    ),
    "capability.option": (
        "本服务器使用的服务商（{providers}）不支持 {option} 选项；请设为 {default} 或不填。"
    ),
    # words that fill other texts (hailuo.i18n.messages.Term, Either): the reader's language
    "mode.t2v": "文生视频",
    "mode.i2v": "图生视频",
    "mode.fl2v": "首尾帧",
    "list.separator": "、",
    "list.or": "{items} 或 {last}",
    "camera.unknown": "[{command}] 不是运镜指令。你是不是想输入：{suggestions}？",
    "camera.empty": "提示词里有空的 [ ]：请在其中写入运镜指令，或将其删除。",
    "camera.unbalanced": "提示词里有方括号没有闭合或没有开头（在第 {position} 个字符处）。",
    "camera.push_out_alias": "注意：[{written}] 不是运镜指令，已按 [{meaning}] 处理。",
    "camera.too_many_in_group": (
        "注意：第 {group} 组运镜方括号里有 {count} 条指令，建议最多 {maximum} 条，"
        "部分指令可能被忽略。"
    ),
    # one per camera command (hailuo.model.camera.CameraCommand.key), for /hailuo help
    "camera.describe.truck_left": "镜头向左横向平移。",
    "camera.describe.truck_right": "镜头向右横向平移。",
    "camera.describe.pan_left": "镜头在原地向左转动。",
    "camera.describe.pan_right": "镜头在原地向右转动。",
    "camera.describe.push_in": "镜头向前移动，靠近主体。",
    "camera.describe.pull_out": "镜头向后移动，远离主体。",
    "camera.describe.pedestal_up": "镜头垂直上升。",
    "camera.describe.pedestal_down": "镜头垂直下降。",
    "camera.describe.tilt_up": "镜头在原地向上仰。",
    "camera.describe.tilt_down": "镜头在原地向下俯。",
    "camera.describe.zoom_in": "镜头变焦推近，机位不动。",
    "camera.describe.zoom_out": "镜头变焦拉远，机位不动。",
    "camera.describe.shake": "镜头晃动，如同手持拍摄。",
    "camera.describe.tracking_shot": "镜头跟随运动的主体。",
    "camera.describe.static_shot": "镜头完全不动。",
    "image.declared_type": "附件不是图片（而是 {actual}）。请附上 JPG、PNG 或 WebP 图片。",
    "image.format": "图片必须是 {allowed}（按文件内容判断，而不是文件名）；你的图片是 {actual}。",
    "image.too_big": "图片必须小于 {limit:MB}；你的图片有 {actual:MB}。",
    "image.too_big_streamed": "图片必须小于 {limit:MB}；你的图片超过了这个大小。",
    "image.short_edge": "图片的短边至少要有 {minimum} 像素；你的图片是 {actual}。",
    "image.aspect": (
        "图片的宽高比必须在 {minimum} 到 {maximum} 之间（不含两端）；"
        "你的图片是 {width}×{height}（{actual}）。"
    ),
    "image.corrupt": "无法读取这张图片，它可能已损坏或不完整。",
    "image.animated": "不接受动图（你的图片有 {frames} 帧）：请附上静态图片。",
    "image.too_many_pixels": "图片有 {actual:,} 像素，上限为 {maximum:,}。请附上更小的图片。",
    "image.too_large_after_prepare": "图片压缩后仍大于 {limit:MB}：请附上更小的图片。",
    "image.last_frame": "尾帧：{reason}",
    # money
    "quota.credits": (
        "这个视频需要 {cost} 积分，你今天的 {allowance} 积分还剩 {remaining}。"
        "积分将于 <t:{renews_at}:R>恢复。"
    ),
    "quota.member_in_flight": "你已有 {maximum} 个视频正在制作中，请等其中一个完成。",
    "quota.guild_in_flight": "本服务器已有 {maximum} 个视频正在制作中，请几分钟后再试。",
    "quota.credits_week": (
        "这个视频需要 {cost} 积分，你本周的 {allowance} 积分还剩 {remaining}。"
        "积分将于 <t:{renews_at}:R>恢复。"
    ),
    "quota.cooldown": (
        "本服务器每位成员每 {seconds} 秒只能生成一个视频；请于 <t:{retry_at}:R>再试。"
    ),
    "quota.budget_day": (
        "本服务器今天的预算不够这个视频（已用 {spent}/{budget} 积分，这个视频需要 {cost}）。"
        "预算将于 <t:{renews_at}:R>恢复。"
    ),
    "quota.budget_month": (
        "本服务器本月的预算不够这个视频（已用 {spent}/{budget} 积分，这个视频需要 {cost}）。"
        "预算将于 <t:{renews_at}:R>恢复。"
    ),
    "notice.budget_day_80": (
        "海螺：本服务器今天已用 {spent}/{budget} 积分（{percent}%）。"
        "预算将于 <t:{renews_at}:R>恢复。"
    ),
    "notice.budget_day_100": (
        "海螺：本服务器今天的预算已用完（{spent}/{budget} 积分）；"
        "在 <t:{renews_at}:R>恢复之前，超出预算的视频都会被拒绝。"
    ),
    "notice.budget_month_80": (
        "海螺：本服务器本月已用 {spent}/{budget} 积分（{percent}%）。"
        "预算将于 <t:{renews_at}:R>恢复。"
    ),
    "notice.budget_month_100": (
        "海螺：本服务器本月的预算已用完（{spent}/{budget} 积分）；"
        "在 <t:{renews_at}:R>恢复之前，超出预算的视频都会被拒绝。"
    ),
    "notice.money_budget_day_80": (
        "海螺：本服务器今天的金额预算已花约 {spent}/{budget}（{percent} %，按价格表估算）。"
        "预算将于 <t:{renews_at}:R>恢复。"
    ),
    "notice.money_budget_day_100": (
        "海螺：本服务器今天的金额预算已用完（约 {spent}/{budget}）；"
        "在 <t:{renews_at}:R>恢复之前，超出预算的视频都会被拒绝。"
    ),
    "notice.money_budget_month_80": (
        "海螺：本服务器本月的金额预算已花约 {spent}/{budget}（{percent} %，按价格表估算）。"
        "预算将于 <t:{renews_at}:R>恢复。"
    ),
    "notice.money_budget_month_100": (
        "海螺：本服务器本月的金额预算已用完（约 {spent}/{budget}）；"
        "在 <t:{renews_at}:R>恢复之前，超出预算的视频都会被拒绝。"
    ),
    # provider outcomes
    "provider.moderation": "服务商拒绝了这个请求的内容。",
    "provider.invalid_request": "服务商拒绝了这个请求的参数。",
    "provider.rate_limited": "服务商正忙，你的视频正在排队。",
    "provider.unavailable": "服务商无法制作这个视频。",
    "provider.auth": "机器人目前无法连接视频服务：服务商拒绝了它的密钥。",
    "provider.balance": "机器人目前无法连接视频服务：它在服务商的账户余额不足。",
    "provider.unsupported": "服务商不接受当前形式的这个请求。",
    "provider.not_found": "服务商找不到这个任务了。",
    "provider.bad_reply": "服务商返回了机器人无法识别的内容。",
    "provider.unknown_outcome": "服务商没有及时响应。",
    "provider.expired": "服务商的文件链接在下载前就过期了。",
    "provider.failed": "服务商无法制作这个视频。",
    "job.interrupted_submit": "提交时被中断；为避免重复扣费，没有再次提交。",
    "job.provider_timeout": "服务商耗时太久，机器人已停止等待。",
    "job.no_provider": "目前没有服务商能接下这个视频。",
    "moderation.strike_notice": (
        "服务商拒绝了你的视频 #{job_id} 的内容，这记为一次警告：{days} 天内你已有 {count} 次，"
        "上限为 {threshold} 次；达到 {threshold} 次后你将暂时无法在本服务器制作视频。"
        "这个视频的积分已退还。"
    ),
    "moderation.strike_blocked": (
        "服务商拒绝了你的视频 #{job_id} 的内容，这是 {days} 天内的第 {count} 次警告（上限 "
        "{threshold} 次），所以你已被禁止在本服务器制作视频，直到管理员解除。"
        "这个视频的积分已退还。如需申诉，请联系本服务器的管理员。"
    ),
    "job.service_unreachable": "机器人目前无法连接它的视频服务。",
    "job.tier_not_offered": (
        "{provider} 已不再制作 {resolution} 视频，本服务器也没有其他服务商可以制作；"
        "机器人绝不会自行改换分辨率。请换一个分辨率再试。"
    ),
    "job.image_not_taken": (
        "{provider} 不接受机器人发送的这张图片，本服务器也没有其他服务商接受图片。"
    ),
    "notice.provider_auth": (
        "视频服务 {provider} 拒绝了机器人的 API 密钥。成员的视频会转给其他服务商（如果有），"
        "否则会失败并退还积分。机器人的运营者需要设置有效的密钥（机器人日志会写明是哪一项设置）。"
    ),
    "notice.provider_balance": (
        "{provider} 账户余额不足。在充值之前，成员的视频会转给其他服务商（如果有），"
        "否则会失败并退还积分。"
    ),
    "job.queue_timeout": "{minutes} 分钟内没有服务商接下这个视频（{providers}：繁忙或不可用）。",
    "job.delivery_failed": "视频已生成，但无法发布到这里。",
    "job.delivery_unreachable": "视频已生成，但机器人已无法在该频道发布，而你也不接收它的私信。",
    "job.result_expired": "视频已生成，但服务商只保留约 {hours} 小时，在此期间未能发布。",
    # moderation
    "moderation.blocklist": "你的提示词违反了本服务器的规则：{rule}。请修改后重试。",
    "moderation.default_label": "服务器屏蔽词",
    "moderation.channel_not_allowed": "在本服务器只能在 {channels} 中制作视频。",
    "moderation.role_required": "你需要以下身份组之一才能在这里制作视频：{roles}。",
    "moderation.blocked": "你已被禁止在本服务器制作视频。如需申诉，请联系本服务器的管理员。",
    "moderation.blocked_until": (
        "你被禁止在本服务器制作视频，直到 <t:{until}:f>。如需提前申诉，请联系本服务器的管理员。"
    ),
    "moderation.approval_needs_channel": (
        "开启审核前请先设置日志频道：版主会在那里收到带有成员图片的审核请求，绝不会发到公开频道。"
        "请在同一条命令里设置日志频道。"
    ),
    "moderation.entry_empty": "去掉空格和符号后，这条屏蔽词就是空的。",
    "moderation.entry_too_long": "屏蔽词最长 {maximum} 个字符；你的有 {actual} 个。",
    "moderation.pattern_invalid": "这个模式不是有效的正则表达式：{error}。",
    "moderation.pattern_unsupported": (
        "这个模式使用了{feature}，屏蔽列表的模式引擎（RE2，"
        "运行时间不会失控）不支持它。请去掉后重写。"
    ),
    "moderation.re2.backreference": "反向引用（\\1 或 (?P=name)）",
    "moderation.re2.lookaround": "前瞻或后顾断言（(?=…)、(?!…)、(?<=…)、(?<!…)）",
    "moderation.re2.group": (
        "它不认识的分组或标志，如 (?x) 或 (?#…)"
        "（它认识 (…)、(?:…)、(?P<name>…) 以及标志 i、m、s、U）"
    ),
    "moderation.re2.repeat": "叠加的量词（如 a++ 或 a*+）",
    "moderation.re2.size": (
        "过大的重复（次数超过 1000，或多个次数相乘后超过 1000 步，例如 [a-z]{{200}}）"
    ),
    "moderation.pattern_matches_everything": "这个模式能匹配空提示词，会拒绝所有提示词。",
    "moderation.blocklist_busy": "本服务器的屏蔽列表正在修改，请稍后再试。",
    "moderation.too_many_entries": "本服务器的屏蔽列表最多 {maximum} 条；请先删除一条。",
    "moderation.too_many_patterns": (
        "本服务器的屏蔽列表最多 {maximum} 个正则表达式；请先删除一个，或改为添加词语或短语。"
    ),
    "moderation.setting_too_small": "{setting} 至少为 {minimum}，不能是 {value}。",
    "moderation.setting_choice": "{setting} 必须是以下之一：{allowed}（不能是 {value}）。",
    # /hailuo-admin moderation settings, blocklist and audit (cogs/moderation.py)
    "modadmin.title": "审核设置",
    "modadmin.changed": "已更改：{settings}。",
    "modadmin.unchanged": "没有任何更改。",
    "modadmin.channels": "可以制作视频的频道",
    "modadmin.channels_all": "所有频道",
    "modadmin.roles": "可以制作视频的身份组",
    "modadmin.roles_all": "所有人",
    "modadmin.moderator": "版主身份组",
    "modadmin.log_channel": "日志频道",
    "modadmin.approval": "审核",
    "modadmin.approval.off": "关闭：任务无需等待版主审核",
    "modadmin.approval.new_members": "加入不到 {days} 天的成员，其任务需等待版主审核",
    "modadmin.approval.untrusted": (
        "加入不到 {days} 天、或不属于 {roles} 中任一身份组的成员，其任务需等待版主审核"
    ),
    "modadmin.approval.everyone": "所有任务都需等待版主审核",
    "modadmin.expiry": "等待审核的任务 {hours} 小时后过期",
    "modadmin.strikes": "警告",
    "modadmin.strikes_value": "{days} 天内被服务商拒绝 {threshold} 次即被封禁",
    "modadmin.blocklist": "屏蔽列表",
    "modadmin.blocklist_value": "{count} 条；用 /海螺管理 屏蔽词 列表 查看",
    "modadmin.none": "无",
    "modadmin.role_not_listed": "{role} 不在这个列表里。",
    "modadmin.channel_needed": "请为这个操作指定一个频道。",
    "modadmin.role_needed": "请为这个操作指定一个身份组。",
    "blocklist.added": "已添加屏蔽条目 #{id}（{kind}）；成员看到的规则是：{label}。",
    "blocklist.removed": "已删除屏蔽条目 #{id}。",
    "blocklist.missing": "本服务器没有屏蔽条目 #{id}。",
    "blocklist.title": "屏蔽列表：{count} 条",
    "blocklist.empty": "屏蔽列表是空的。",
    "blocklist.line": "#{id} · {kind} · `{text}` · {label}",
    "blocklist.kind.word": "词语",
    "blocklist.kind.phrase": "短语",
    "blocklist.kind.regex": "正则表达式",
    "audit.title": "审计日志",
    "audit.empty": "没有符合条件的日志。",
    "audit.line": "`#{id}` <t:{at}:f> **{action}**，操作者 {actor}{target}{job}",
    "audit.target": " · 成员 {user}",
    "audit.job": " · 任务 #{job_id}",
    "audit.bot": "机器人",
    "audit.by": "操作者",
    "audit.member": "成员",
    "audit.job_field": "任务",
    "audit.details": "详情",
    "audit.older": "较早",
    "audit.newer": "较新",
    "audit.action.approve": "任务已批准",
    "audit.action.reject": "任务被拒绝",
    "audit.action.expire": "审核已过期",
    "audit.action.block": "成员被封禁",
    "audit.action.unblock": "成员已解封",
    "audit.action.strike": "警告",
    "audit.action.grant": "发放积分",
    "audit.action.reset": "重置积分",
    "audit.action.setting_changed": "设置已更改",
    "audit.action.video_deleted": "视频已删除",
    "audit.action.cancel": "任务已取消",
    # status message
    "status.checking_image": "正在检查你的图片…",
    "status.checking_request": "正在检查你的请求…",
    "status.queued": "排队中",
    "status.queued_at": "排队中（第 {position} 位）",
    "status.queued_eta": "排队中（第 {position} 位，约 {minutes} 分钟）",
    "status.queued_soon": "排队中（第 {position} 位，不到一分钟）",
    "status.submitting": "正在提交给服务商…",
    "status.submitted": "服务商已受理，等待开始",
    "status.running": "生成中…",
    "status.running_progress": "生成中… {progress}%",
    "status.succeeded": "已完成，正在发布视频…",
    "status.delivered": "已送达",
    "status.elapsed": "开始于 <t:{since}:R>",
    "status.eta": "预计完成 <t:{at}:R>",
    "status.video_link": "[查看视频]({url})",
    "status.failed": "失败：{reason}已退还你的 {cost} 积分。",
    "status.delivery_failed": "失败：{reason}已退还你的 {cost} 积分。",
    "status.cancelled": "已取消",
    "status.rejected": "已被版主拒绝。已退还你的 {cost} 积分。",
    "status.expired": "没有人及时审核。已退还你的 {cost} 积分。",
    "status.awaiting_approval": "等待版主审核",
    "status.title": "海螺视频 #{job_id}",
    "status.no_card": (
        "<@{user_id}> 这是你的视频 #{job_id} 的当前状态：我关于它的第一条回复可能没有送达。"
    ),
    "job.first_answer_missed": "Discord 没有及时显示我的第一条回复，所以此请求已撤回并退还点数。",
    "request.duplicate": "这个请求已经生成了视频 #{job_id}，不会重复制作或重复扣点。",
    "status.field.prompt": "提示词",
    "status.field.settings": "设置",
    "status.field.cost": "费用",
    "status.settings": "{mode} · {resolution} · {duration} 秒 · {model}",
    "status.cost": "{cost} 积分",
    # delivery; "(job #N)" stays as it is: cogs/notifier.find_delivery looks for it after a crash
    # where results go (cogs/results.py)
    "results.thread_name": "视频 #{job_id}",
    "results.place.channel": "在频道中",
    "results.place.thread": "每个任务一个子区",
    "results.notify.mention": "提及我",
    "results.notify.dm": "私信我",
    "results.notify.quiet": "安静（不提及）",
    "results.set": "结果现在发布{place}。",
    "results.notify_now": "视频做好时：{notify}。",
    "results.policy": "结果：{place}。你的通知方式：{notify}。",
    "delivery.posted_quiet": "你的视频做好了 (job #{job_id})。",
    "delivery.dm_notice": "你的视频做好了 (job #{job_id})：{url}",
    "delivery.dm_closed": (
        "<@{user_id}> 你的视频做好了 (job #{job_id})。你选择了私信通知，"
        "但你的私信对本机器人关闭了：请打开私信，或用 `/海螺 设置` 换一种通知方式。"
    ),
    "permission.create_public_threads": "创建公开子区",
    "permission.send_messages_in_threads": "在子区中发送消息",
    "delivery.posted": "<@{user_id}> 你的视频做好了 (job #{job_id})。",
    "delivery.link": (
        "<@{user_id}> 你的视频做好了 (job #{job_id})，但{reason}"
        "请在这里下载，链接几小时后失效：{url}"
    ),
    "delivery.too_large": (
        "它有 {size_mb} MB，超过了本频道 {limit_mb} MB 的上传上限，且无法压缩到上限以内。"
    ),
    "delivery.too_large_to_fetch": "它太大了，机器人无法下载。",
    "delivery.cannot_attach": "机器人无权在本频道上传文件。",
    "delivery.direct": (
        "你在 <#{channel_id}> 请求了这个视频，但机器人已无法在那里发布，所以发到这里。"
    ),
    "delivery.compressed": (
        "<@{user_id}> 你的视频做好了 (job #{job_id})。为了符合本频道 {limit_mb} MB 的上传上限，"
        "它已被压缩；原视频（{size_mb} MB）几小时内可在这里下载：<{url}>"
    ),
    # account
    "quota.summary": (
        "你今天的 {allowance} 积分还剩 **{remaining}**（其中 {reserved} 被制作中的视频占用）。"
        "积分将于 <t:{renews_at}:R>恢复。"
    ),
    "quota.costs": "价格：{costs}。",
    "cost.model": "{model}：{items}",
    "cost.item": "{resolution} {duration} 秒 = {credits}",
    "quota.summary_week": (
        "你本周的 {allowance} 积分还剩 **{remaining}**（其中 {reserved} 被制作中的视频占用）。"
        "积分将于 <t:{renews_at}:R>恢复。"
    ),
    "quota.adjusted": "本周期管理员调整了你的积分：{amount:+d}。",
    "quota.recent": "最近记录：",
    "ledger.reserve": "<t:{at}:R> −{amount}，为视频 #{job_id} 预留",
    "ledger.charge": "<t:{at}:R> 视频 #{job_id} 已送达：积分已扣除",
    "ledger.charge_cancelled": "<t:{at}:R> 视频 #{job_id} 在服务商受理后被停止：积分已扣除",
    "ledger.refund": "<t:{at}:R> +{amount}，视频 #{job_id} 退还：{why}",
    "ledger.grant": "<t:{at}:R> +{amount}，由 <@{actor_id}> 发放{note}",
    "ledger.take": "<t:{at}:R> −{amount}，被 <@{actor_id}> 收回{note}",
    "ledger.reset": "<t:{at}:R> 由 <@{actor_id}> 重置为完整额度（{amount:+d}）",
    "ledger.expire": "<t:{at}:R> {amount:+d} 已过期",
    "ledger.why.cancelled": "已取消",
    "ledger.why.rejected": "被版主拒绝",
    "ledger.why.expired": "没有人及时审核",
    "ledger.why.failed": "生成失败",
    "ledger.why.delivery_failed": "无法发布",
    "jobs.none": "你还没有在本服务器制作过视频。",
    "jobs.line": "#{job_id} · {state} · {resolution} {duration} 秒 · {cost} 积分 · <t:{at}:R>",
    "state.awaiting_approval": "等待审核",
    "state.queued": "排队中",
    "state.submitting": "提交中",
    "state.submitted": "已受理",
    "state.running": "生成中",
    "state.succeeded": "发布中",
    "state.delivered": "已送达",
    "state.rejected": "已拒绝",
    "state.expired": "已过期",
    "state.cancelled": "已取消",
    "state.failed": "失败",
    "state.delivery_failed": "未能发布",
    # admins
    "admin.manage_guild": "只有拥有“管理服务器”权限的成员才能使用。",
    "admin.timezone": "{name} 不是时区名称。请使用 IANA 名称，例如 {examples}。",
    "admin.range.credits": "积分必须在 {minimum} 到 {maximum} 之间，不能是 {value}。",
    "admin.range.budget": (
        "预算必须在 {minimum} 到 {maximum} 积分之间（0 表示取消预算），不能是 {value}。"
    ),
    "admin.range.jobs": "任务上限必须在 {minimum} 到 {maximum} 之间，不能是 {value}。",
    "admin.range.cooldown": (
        "冷却时间必须在 {minimum} 到 {maximum} 秒之间（0 表示关闭），不能是 {value}。"
    ),
    "admin.cost_key": "{model} 没有 {resolution} {duration} 秒的视频。可设置价格的有：{allowed}。",
    "admin.take_too_many": "无法收回 {amount} 积分：该成员只剩 {remaining}。",
    "admin.period.day": "每天",
    "admin.period.week": "每周（每周一恢复）",
    "admin.none": "无",
    "admin.off": "关闭",
    "admin.allowance.done": "现在每位成员{period}获得 {credits} 积分。",
    "admin.tier.done": "拥有 <@&{role_id}> 的成员现在每个周期获得 {credits} 积分。",
    "admin.tier.removed": "<@&{role_id}> 不再有单独的额度。",
    "admin.budget.done": "服务器预算：每天 {daily}，每月 {monthly}。",
    "admin.timezone.done": (
        "额度和预算现在在 {name} 的午夜恢复；下次恢复时间：<t:{renews_at}:R>。"
    ),
    "admin.limits.done": (
        "同时进行的任务：每位成员最多 {member_jobs} 个，全服务器最多 {server_jobs} 个；"
        "冷却：{cooldown}。"
    ),
    "admin.cost.done": "在本服务器，{model} {resolution} {duration} 秒现在需要 {credits} 积分。",
    "admin.channel.done": "预算通知现在发送到 <#{channel_id}>。",
    "admin.grant.done": "<@{user_id}> 获得了 {amount} 积分；本周期还剩 {remaining}。",
    "admin.take.done": "已从 <@{user_id}> 收回 {amount} 积分；本周期还剩 {remaining}。",
    "admin.reset.done": "<@{user_id}> 本周期的积分已恢复为 {remaining}。",
    "admin.block.done": "<@{user_id}> 不能再在这里制作视频了。",
    "admin.unblock.done": "<@{user_id}> 可以重新在这里制作视频了。",
    "admin.unblock.none": "<@{user_id}> 并没有被封禁。",
    "admin.usage.summary": (
        "今天已用：{today}（预算：{daily}）。本月已用：{month}（预算：{monthly}）。"
        "日期按 {timezone} 计算。"
    ),
    "admin.usage.top": "过去 30 天用得最多的成员：",
    "admin.usage.top_line": "{rank}. <@{user_id}> · {credits} 积分",
    "admin.usage.nobody": "过去 30 天没有人使用积分。",
    # Drawn into the PNG with Pillow's default font, which has no CJK glyphs: Chinese
    # would come out as boxes, so the chart keeps its English title.
    "admin.usage.chart_title": "Credits spent per day, last 30 days ({timezone})",
    "quota.money_budget_day": (
        "本服务器今天的金额预算不够这个视频（已花 {spent}/{budget}；"
        "这个视频最多花 {cost}）。没有扣除任何积分。"
        "预算将于 <t:{renews_at}:R>恢复。"
    ),
    "quota.money_budget_month": (
        "本服务器本月的金额预算不够这个视频（已花 {spent}/{budget}；"
        "这个视频最多花 {cost}）。没有扣除任何积分。"
        "预算将于 <t:{renews_at}:R>恢复。"
    ),
    "admin.usd_invalid": (
        "请输入美元金额，例如 0.28（0 到 1000000，最多 6 位小数），而不是 {value}。"
    ),
    "admin.price_provider": "{provider} 不是本机器人的服务商：{allowed}。",
    "admin.price.done": (
        "{provider}：{model} {resolution} {duration} 秒的视频在这里现在每个 {price}。"
    ),
    "admin.price.unknown": "未知",
    "admin.prices.title": "各服务商每个视频的价格（美元估算；* 为本服务器设置）：",
    "admin.prices.line": "{provider} · {model} {resolution} {duration} 秒 · {price}{mark}",
    "admin.money_budget.done": "服务器金额预算：每天 {daily}，每月 {monthly}。",
    "admin.policy_money": (
        "金额预算：每天 {daily}，每月 {monthly}（按价格表估算：`/海螺管理 价格表`）。"
    ),
    "admin.prices.unknown_hint": (
        "显示为未知的价格在金额统计和预算中按零计算：请用 `/海螺管理 服务商价格` 设置。"
    ),
    "admin.usage.money": (
        "金额（按价格表估算）：今天 {today}（预算：{daily}）；本月 {month}（预算：{monthly}）。"
    ),
    "admin.usage.money_provider": "{provider}：过去 30 天 {money}（已交付 {videos} 个）",
    "admin.usage.money_unpriced": (
        "价格未设置、未计入的已交付视频：{count} 个。用 /海螺管理 服务商价格 设置价格。"
    ),
    "admin.usage.money_none": "过去 30 天没有已知价格的已交付视频。",
    "admin.usage.money_chart_title": (
        "Estimated USD per day and provider, last 30 days ({timezone})"
    ),
    "admin.policy": (
        "额度：{period} {allowance} 积分（时区 {timezone}）。身份组额度：{tiers}。"
        "预算：每天 {daily}，每月 {monthly}。同时进行的任务：每位成员 {member_jobs} 个，"
        "全服务器 {server_jobs} 个。冷却：{cooldown}。通知频道：{channel}。价格：{costs}。"
    ),
    "admin.seconds": "{seconds} 秒",
    # the approval queue (hailuo/moderation/approval.py, cogs/approvals.py)
    "approval.title": "需要审核：视频 #{job_id}",
    "approval.own_job": "你不能审核自己的视频 #{job_id}：需由其他版主决定。",
    "approval.pending": "等待版主处理；将于 <t:{expires_at}:R>过期。",
    "approval.field.member": "成员",
    "approval.button.approve": "批准",
    "approval.button.reject": "拒绝",
    "approval.modal.title": "拒绝视频 #{job_id}",
    "approval.modal.reason": "原因（成员会看到）",
    "approval.decided.approved": "已由 <@{by}> 批准。",
    "approval.decided.rejected": "已被 <@{by}> 拒绝：{reason}",
    "approval.decided.expired": "已过期：没有人及时处理。已退还积分。",
    "approval.decided.cancelled": "成员已撤回。已退还积分。",
    "approval.done.approved": "你批准了视频 #{job_id}，它已进入队列。",
    "approval.done.rejected": "你拒绝了视频 #{job_id}；已为该成员退还积分，对方会看到你的理由。",
    "approval.not_moderator": "只有拥有“管理消息”权限的成员才能在这里批准或拒绝视频。",
    "approval.not_moderator_role": (
        "只有版主（{role}，或拥有“管理消息”权限的成员）才能在这里批准或拒绝视频。"
    ),
    "approval.unknown": "视频 #{job_id} 没有在等待版主审核。",
    "approval.member_blocked": (
        "<@{user_id}> 目前被禁止制作视频，视频 #{job_id} 无法批准，请改为拒绝。"
    ),
    "approval.member_in_flight": (
        "<@{user_id}> 已有 {maximum} 个视频正在制作中；请等其中一个完成后再批准视频 #{job_id}。"
    ),
    "approval.guild_in_flight": (
        "本服务器已有 {maximum} 个视频正在制作中；请等其中一个完成后再批准视频 #{job_id}。"
    ),
    "approval.reason_empty": "请填写原因：成员会看到它。",
    "approval.already_approved": "<@{by}> 已于 <t:{at}:R>批准了视频 #{job_id}。",
    "approval.already_rejected": "<@{by}> 已于 <t:{at}:R>拒绝了视频 #{job_id}：{reason}",
    "approval.already_expired": "视频 #{job_id} 已于 <t:{at}:R>过期：没有人及时处理。",
    "approval.already_cancelled": "成员已于 <t:{at}:R>撤回了视频 #{job_id}。",
    "approval.rejected": "{reason}",
    "status.field.reason": "版主给出的原因",
    # the member's controls on the status card (hailuo/jobs/controls.py, cogs/controls.py)
    "control.button.cancel": "取消",
    "control.button.confirm_cancel": "仍然停止",
    "control.button.reroll": "重新生成",
    "control.button.extend": "延长",
    "control.button.confirm_extend": "花 {cost} 积分延长",
    "extend.modal.title": "延长视频 #{job_id}",
    "extend.modal.prompt": "接下来发生什么？",
    "extend.confirm": "视频 #{job_id} 将从最后一帧继续。需要 {cost} 积分；按下按钮开始。",
    "extend.started": "视频 #{new_id} 接续视频 #{job_id}；它的卡片在频道中。",
    "extend.expired": "视频 #{job_id} 的延长已不在等待中：请再按一次“延长”。",
    "extend.not_delivered": "视频 #{job_id} 尚未送达，无法延长。",
    "extend.no_frame": "无法读取视频 #{job_id} 的最后一帧。",
    "extend.video_gone": "视频 #{job_id} 已不可用（帖子和服务商的文件都已不在），无法延长。",
    "control.button.confirm_reroll": "花 {cost} 积分重新生成",
    "control.button.delete": "删除视频",
    "control.button.info": "详情",
    "control.unknown_job": "本服务器没有视频 #{job_id}。",
    "control.cancel.not_yours": "只有发起视频 #{job_id} 的成员或版主才能取消它。",
    "control.cancel.submitting": (
        "视频 #{job_id} 此刻正在提交给服务商，暂时无法取消；请几秒后再试。"
    ),
    "control.cancel.succeeded": "视频 #{job_id} 已经做好，正在发布，无法再取消。",
    "control.cancel.finished": "视频 #{job_id} 当前状态为“{state}”，无需取消。",
    "control.cancel.confirm": (
        "服务商已受理视频 #{job_id}，且无法中途停止，所以它的 {cost} 积分不会退还。"
        "取消只会让机器人不再跟进和发布它。仍要停止吗？"
    ),
    "control.cancel.needs_confirm": (
        "服务商刚刚受理了视频 #{job_id}；请再按一次“取消”，看看停止它的代价。"
    ),
    "control.cancel.done_refund": "视频 #{job_id} 已取消；你的 {cost} 积分已退还。",
    "control.cancel.done_charged": (
        "视频 #{job_id} 已取消：机器人已停止跟进。它的 {cost} 积分不予退还。"
    ),
    "control.cancel.choice": "#{job_id} · {state} · {prompt}",
    "control.reroll.not_yours": "只有发起视频 #{job_id} 的成员才能重新生成它。",
    "control.reroll.rejected": "视频 #{job_id} 已被版主拒绝，无法重新生成。",
    "control.reroll.not_finished": "视频 #{job_id} 当前状态为“{state}”；请等它完成后再重新生成。",
    "control.reroll.images_gone": (
        "视频 #{job_id} 的图片已不再保留（视频结束一段时间后会删除）；"
        "请用该图片重新发起 /海螺 图生视频。"
    ),
    "control.reroll.confirm": (
        "用相同的请求和图片重新生成视频 #{job_id}？需要 {cost} 积分；你还剩 {remaining}。"
    ),
    "control.reroll.done": "已重新生成视频 #{job_id}，新编号为 #{new_id}。",
    "control.delete.not_yours": "只有发起视频 #{job_id} 的成员或版主才能删除它的视频。",
    "control.delete.no_video": "视频 #{job_id} 没有已发布的视频可删除。",
    "control.delete.gone": "#{job_id} 的视频已经被删除了。",
    "control.delete.failed": "无法删除 #{job_id} 的视频，请稍后再试。",
    "control.delete.done": "#{job_id} 的视频已删除。",
    "control.button.fresh_link": "获取新链接",
    "control.fresh.done": "#{job_id} 视频的新链接（同样会失效）：{url}",
    "control.fresh.no_video": "视频 #{job_id} 没有可链接的成品视频。",
    "control.fresh.failed": "服务商暂时没有给出 #{job_id} 视频的新链接，请一分钟后再试。",
    "control.info.title": "**视频 #{job_id}** · {state} · 发起人 <@{user_id}>",
    "control.info.request": "请求：{mode} · {resolution} · {duration} 秒 · {model}",
    "control.info.prompt": "提示词：{prompt}",
    "control.info.provider": "服务商：{provider} · 任务 ID：{task_id}",
    "control.info.times": "发起于 {created} · 受理于 {submitted} · 完成于 {finished}",
    "control.info.credits": "积分：{cost} · {state}",
    "control.info.none": "—",
    "control.credits.held": "已预留，任务结束时结算",
    "control.credits.spent": "已扣除",
    "control.credits.refunded": "已退还",
    # /hailuo help
    "help.title": "如何生成海螺视频",
    "help.camera": (
        "**运镜指令**：用方括号写在提示词里，中英文均可。同一个方括号里的多条指令同时生效"
        "（建议最多 {maximum} 条）；连续的方括号按顺序生效。“运镜”选项会在末尾再加一条。"
        "不是运镜指令的方括号会作为文字保留在提示词中（如“招牌上写着 [营业中]”）；"
        "若方括号内容看起来像运镜指令但你想保留为文字，请写成 \\\\[ 和 \\\\]。"
    ),
    "help.offers": "本服务器提供的视频",
    "help.offer_line": "{mode}：{resolutions}（模型：{models}）",
    "help.resolution": "{resolution}（{durations} 秒）",
    "help.camera_line": "[{english}] / [{chinese}]：{description}",
    "help.costs_title": "积分",
    "help.costs": "{costs}。用 /海螺 额度 查看你还剩多少积分。",
    "help.images_title": "图片",
    "help.images": (
        "{formats}，静态图，小于 {max_bytes:MB} 且不超过 {max_pixels:,} 像素；"
        "短边至少 {min_short_edge} 像素；宽高比在 {aspect_min} 到 {aspect_max} 之间"
        "（不含两端）。发送前会重新编码为 {send_formats}。"
    ),
    # errors without a rule
    "error.unexpected": "我们这边出了点问题（事件编号 {incident}）。没有扣除任何积分。",
    "error.unexpected_job": (
        "我们这边出了点问题（事件编号 {incident}），但你的视频 #{job_id} 已经创建：状态为 {state}，"
        "占用 {cost} 积分。它会继续进行；如果失败，积分会退还。用 /海螺 我的视频 查看。"
    ),
    "error.guild_only": "请在服务器的频道里使用这个命令。",
    "access.bot_missing": (
        "我无法在此频道制作视频：我在这里缺少 {permissions} 权限。"
        "请管理员在此频道为我的身份组授予这些权限。未扣除任何点数。"
    ),
    "permission.view_channel": "查看频道",
    "permission.send_messages": "发送消息",
    "permission.attach_files": "附加文件",
    "permission.embed_links": "嵌入链接",
    "permission.read_message_history": "阅读消息历史",
    # 中文没有复数形式：one 与 other 相同
    "plural.credit.one": "{count} 积分",
    "plural.credit.other": "{count} 积分",
    "plural.day.one": "{count} 天",
    "plural.day.other": "{count} 天",
    "plural.refusal.one": "{count} 次服务商拒绝",
    "plural.refusal.other": "{count} 次服务商拒绝",
    "plural.entry.one": "{count} 条",
    "plural.entry.other": "{count} 条",
    "plural.video.one": "{count} 个视频",
    "plural.video.other": "{count} 个视频",
    "unit.megabytes": "{amount} MB",
}
